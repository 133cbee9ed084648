# echod's image: Debian 12's Python 3.11 and tini, echod in a virtualenv, run as a
# non-root user. `make image` builds it (with docker, or podman where there is no
# docker) and first puts in build/wheels/ the wheels of echod and of its dependencies at
# the versions of constraints.txt (scripts/image-wheels): the build installs only those,
# with no package index. Where debian:12.15-slim cannot be pulled, `make image` makes it
# from Debian's packages (scripts/base-image). Pin the base by digest when you publish.
FROM debian:12.15-slim AS runtime
# What the final image adds to Debian: its Python and tini, as the pinned release has them
# (exact package versions disappear from the archive with each security update), and the
# user echod runs as.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends python3 tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 echod \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin echod

FROM runtime AS build
COPY constraints.txt /src/
COPY build/wheels /wheels
# A virtualenv without pip; pip runs from its own wheel, so it never enters the image.
RUN python3 -m venv --without-pip /opt/echod \
    && set -- /wheels/pip-*.whl \
    && /opt/echod/bin/python "$1/pip" install --quiet --no-index \
        --disable-pip-version-check --no-cache-dir --find-links /wheels \
        --constraint /src/constraints.txt echod

FROM runtime
COPY --from=build /opt/echod /opt/echod
ENV PATH=/opt/echod/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001
# HTTP and HTTPS (echod makes a self-signed certificate at start unless given one).
EXPOSE 3000 10000
# echod drains on SIGTERM: give the container a stop timeout above --drain-delay plus
# --shutdown-timeout plus 5 s (podman and docker wait 10 s by default): docker run and
# podman run take --stop-timeout 30, and compose stop_grace_period: 30s.
STOPSIGNAL SIGTERM
# echod healthcheck reads ECHOD_HOST and ECHOD_PORT as echod does, and answers within 2 s.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["echod", "healthcheck"]
# tini is PID 1: it forwards signals to echod and reaps any process that echod did not start.
ENTRYPOINT ["tini", "--", "echod"]
ARG VERSION=unknown
ARG SOURCE=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="echod" \
      org.opencontainers.image.description="A JSON echo API with everything production needs around it." \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.source="$SOURCE" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="debian:12.15-slim"
