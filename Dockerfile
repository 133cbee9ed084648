# echod's image. The build stage installs echod and its pinned dependencies into a
# virtualenv; the final stage gets only that virtualenv, without pip, and runs it as a
# non-root user. `make dockerrun` builds and runs it; deploy/compose.yaml and deploy/k8s
# use it. Pin the base image by digest too when you publish the image.
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
# Every dependency ships a wheel, so no compiler is needed; the versions are the ones the
# tests ran with (constraints.txt).
RUN python -m venv --without-pip /opt/echod \
    && pip --python /opt/echod/bin/python install --constraint constraints.txt .

FROM python:3.11.14-slim-bookworm
ENV PATH=/opt/echod/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin echod
COPY --from=build /opt/echod /opt/echod
USER 10001
# HTTP and HTTPS (echod makes a self-signed certificate at start unless given one).
EXPOSE 3000 10000
# The probe uses the default port; change it with ECHOD_PORT.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/health', timeout=2)"]
ENTRYPOINT ["echod"]
