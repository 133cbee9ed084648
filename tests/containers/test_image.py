"""echod's image as make image built it: its configuration, its contents and its size."""

from __future__ import annotations

from typing import Any

import pytest

from echod.version import __version__
from tests.containers.support import IMAGE, inspect, podman_status
from tests.deploy.support import DEPLOY, load_yaml

pytestmark = pytest.mark.containers

#: The budget of the issue, in the decimal megabytes that podman and docker print.
SIZE_BUDGET = 300 * 1000 * 1000


def config() -> dict[str, Any]:
    """The image's configuration."""
    found: dict[str, Any] = inspect("image", IMAGE)["Config"]
    return found


def shell(script: str) -> tuple[int, str]:
    """Run ``sh -c script`` in a throw-away container of the image."""
    return podman_status("run", "--rm", "--entrypoint", "sh", IMAGE, "-c", script)


class TestConfiguration:
    def test_is_tagged_latest_and_with_the_version(self) -> None:
        """make image tags one image as echod:latest and echod:<version>."""
        assert inspect("image", IMAGE)["Id"] == inspect("image", f"echod:{__version__}")["Id"]

    def test_runs_as_the_uid_kubernetes_expects(self) -> None:
        """The user is 10001, the runAsUser of the Deployment."""
        deployment = load_yaml(DEPLOY / "k8s" / "deployment.yaml")
        pod = deployment["spec"]["template"]["spec"]["securityContext"]
        assert config()["User"] == str(pod["runAsUser"]) == "10001"

    def test_exposes_the_ports_kubernetes_probes(self) -> None:
        """3000 (probed by Kubernetes) and 10000 are exposed."""
        assert set(config()["ExposedPorts"]) == {"3000/tcp", "10000/tcp"}

    def test_carries_version_source_and_licence_labels(self) -> None:
        """The OCI labels: the version of echod, a source, the MIT licence, the revision."""
        labels = config()["Labels"]
        assert labels["org.opencontainers.image.version"] == __version__
        assert labels["org.opencontainers.image.licenses"] == "MIT"
        assert labels["org.opencontainers.image.source"]
        assert len(labels["org.opencontainers.image.revision"]) == 40

    def test_healthcheck_is_echod_healthcheck(self) -> None:
        """The HEALTHCHECK survived the build (--format docker) and runs echod healthcheck."""
        check = inspect("image", IMAGE)["Healthcheck"]
        assert check["Test"] == ["CMD", "echod", "healthcheck"]
        assert check["Timeout"] == 3 * 10**9

    def test_tini_runs_echod(self) -> None:
        """tini is the entrypoint, echod its child; SIGTERM is the stop signal."""
        assert config()["Entrypoint"] == ["tini", "--", "echod"]
        assert config()["StopSignal"] == "SIGTERM"

    def test_size_is_within_the_budget(self) -> None:
        """The image is at most 300 MB (docs/containers.md publishes the figure)."""
        size = inspect("image", IMAGE)["Size"]
        assert size <= SIZE_BUDGET, f"{size / 1e6:.1f} MB"


class TestContents:
    @pytest.mark.parametrize(
        "tool", ["pip", "pip3", "gcc", "cc", "c++", "make", "ld", "as"], ids=str
    )
    def test_has_no_pip_compiler_or_build_tool(self, tool: str) -> None:
        """No pip, compiler, linker, assembler or make is on the PATH."""
        status, output = shell(f"command -v {tool}")
        assert status != 0, output

    def test_python_has_no_pip_module(self) -> None:
        """Neither the virtualenv's Python nor Debian's has a pip module."""
        for python in ("python", "/usr/bin/python3"):
            status, output = shell(f"{python} -m pip --version")
            assert status != 0
            assert "No module named pip" in output

    def test_echod_runs_on_debians_python(self) -> None:
        """The virtualenv's Python is Debian 12's CPython 3.11."""
        status, output = shell("readlink -f /opt/echod/bin/python; python -V; echod --version")
        assert status == 0, output
        assert "/usr/bin/python3.11" in output
        assert "Python 3.11." in output
        assert f"echod {__version__}" in output

    def test_installed_the_pinned_versions(self) -> None:
        """The dependencies in the image are those of constraints.txt."""
        pins = {
            name.lower().replace("_", "-"): version
            for name, _, version in (
                line.partition("==")
                for line in (DEPLOY.parent / "constraints.txt").read_text().splitlines()
                if "==" in line
            )
        }
        status, output = shell(
            "python -c 'import importlib.metadata as m; "
            'print("\\n".join(f"{d.name} {d.version}" for d in m.distributions()))\''
        )
        assert status == 0, output
        installed = dict(line.split() for line in output.splitlines() if line.count(" ") == 1)
        for name in ("granian", "msgspec", "bcrypt", "cryptography"):
            assert installed[name] == pins[name.replace("_", "-")], name
        assert "prometheus_client" not in installed, "/metrics needs no metrics library"
