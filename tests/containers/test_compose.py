"""deploy/compose.yaml run for real with podman-compose, without Envoy: Prometheus scrapes echod.

Envoy cannot run here (no registry has its image for us), so the stack runs with
deploy/compose.without-envoy.yaml, and with a third file that moves the published ports
to free loopback ports. Prometheus reaches echod by its service name inside the compose
network, as it would in production.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from tests.containers.support import PREFIX, START_TIMEOUT, STOP_TIMEOUT, inspect, wait_http
from tests.deploy.support import ALERTS, DEPLOY, REPO, load_yaml
from tests.support.processes import free_port
from tests.support.users import AUTH
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.containers

PODMAN_COMPOSE = Path(sys.executable).with_name("podman-compose")


def prometheus_image() -> str:
    """The name of compose's Prometheus image in podman's store: pulled, or made here."""
    image = load_yaml(DEPLOY / "compose.yaml")["services"]["prometheus"]["image"]
    default = re.fullmatch(r"\$\{PROMETHEUS_IMAGE:-([^}]+)\}", image)
    assert default, image
    done = subprocess.run(
        [str(REPO / "scripts" / "base-image"), default[1]],
        env={**os.environ, "ENGINE": "podman"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"make test-containers makes {default[1]}: {done.stderr}"
    return done.stdout.strip()


class Stack:
    """One compose project of echod and Prometheus, on free loopback ports."""

    def __init__(self, directory: Path) -> None:
        """Write the ports override into ``directory``; :meth:`up` starts the stack."""
        self.project = f"{PREFIX}compose-{free_port()}"
        self.port, self.prometheus_port = free_port(), free_port()
        ports = directory / "ports.yaml"
        ports.write_text(
            "services:\n"
            "  backend:\n"
            "    ports: !override\n"
            f'      - "127.0.0.1:{self.port}:3000"\n'
            "  prometheus:\n"
            "    ports: !override\n"
            f'      - "127.0.0.1:{self.prometheus_port}:9090"\n'
        )
        self.files = [DEPLOY / "compose.yaml", DEPLOY / "compose.without-envoy.yaml", ports]
        self.prometheus = f"http://127.0.0.1:{self.prometheus_port}"
        # As make compose-up does: compose runs the Prometheus image under the name it has.
        self.env = {**os.environ, "PROMETHEUS_IMAGE": prometheus_image()}

    def compose(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run podman-compose on this project's files."""
        files = [argument for path in self.files for argument in ("-f", str(path))]
        return subprocess.run(
            [str(PODMAN_COMPOSE), "-p", self.project, *files, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def container(self, service: str) -> str:
        """The name podman-compose gives the container of ``service``."""
        return f"{self.project}_{service}_1"

    def up(self) -> Stack:
        """Start the stack with the images make test-containers built; wait for both."""
        done = self.compose("up", "--detach", "--no-build")
        assert done.returncode == 0, done.stdout + done.stderr
        wait_http(f"http://127.0.0.1:{self.port}/health", self.container("backend"))
        wait_http(f"{self.prometheus}/-/ready", self.container("prometheus"))
        return self

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector ``expr`` evaluates to now in the stack's Prometheus."""
        answer = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        data = answer.json()
        assert data["status"] == "success", data
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout: float = START_TIMEOUT) -> list[dict[str, Any]]:
        """Wait until ``expr`` has a result; return it, or fail after ``timeout`` seconds."""
        return eventually(
            lambda: self.query(expr), timeout=timeout, interval=0.5, failure=f"{expr} had no result"
        )

    def down(self) -> None:
        """Stop and remove the containers, the network and the data volume."""
        self.compose("down", "--volumes", timeout=STOP_TIMEOUT * 3)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack, up for the tests of this module, always brought down."""
    made = Stack(tmp_path_factory.mktemp("compose"))
    try:
        yield made.up()
    finally:
        made.down()


class TestConfig:
    def test_without_envoy_leaves_envoy_out_and_prometheus_waits_for_echod(
        self, stack: Stack
    ) -> None:
        """podman-compose config merges the files: no Envoy, Prometheus after echod alone."""
        done = stack.compose("config")
        assert done.returncode == 0, done.stderr
        config = yaml.safe_load(done.stdout)
        assert set(config["services"]) == {"backend", "prometheus"}
        assert list(config["services"]["prometheus"]["depends_on"]) == ["backend"]

    def test_runs_echod_and_prometheus_and_nothing_else(self, stack: Stack) -> None:
        """The project's containers are echod (backend) and Prometheus, both running."""
        listed = subprocess.run(
            ["podman", "ps", "--filter", f"label=io.podman.compose.project={stack.project}",
             "--format", "json"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        names = sorted(entry["Names"][0] for entry in json.loads(listed))
        assert names == [stack.container("backend"), stack.container("prometheus")]


class TestScrape:
    def test_prometheus_scrapes_echod_inside_the_network(self, stack: Stack) -> None:
        """up{job="echod"} is 1, for the target backend:3000 named by the compose network."""
        [up] = stack.wait_for('up{job="echod"} == 1')
        assert up["metric"]["instance"] == "backend:3000"
        assert up["value"][1] == "1"

    def test_requests_to_echod_reach_prometheus(self, stack: Stack) -> None:
        """An echo through the published port shows up in Prometheus's http_requests_total."""
        answer = httpx.post(
            f"http://127.0.0.1:{stack.port}/api/echo", auth=AUTH, content=b"{}", timeout=10
        )
        assert answer.status_code == 200
        [counted] = stack.wait_for(
            'http_requests_total{job="echod",path="/api/echo",status="200"} > 0'
        )
        assert float(counted["value"][1]) >= 1

    def test_every_rule_is_loaded_and_evaluates(self, stack: Stack) -> None:
        """Every alert of alerts.yaml is loaded and evaluates without error."""
        expected = {
            rule["alert"] for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]
        }
        seen: list[dict[str, Any]] = []

        def healthy() -> list[dict[str, Any]]:
            answer = httpx.get(f"{stack.prometheus}/api/v1/rules", timeout=10).json()
            seen[:] = [rule for group in answer["data"]["groups"] for rule in group["rules"]]
            return seen if seen and all(rule["health"] == "ok" for rule in seen) else []

        rules = eventually(healthy, timeout=START_TIMEOUT, interval=0.5, failure=lambda: str(seen))
        assert {rule["name"] for rule in rules} == expected
        assert [rule for rule in rules if rule["health"] != "ok"] == []

    def test_echod_runs_the_image_make_built_with_https_off(self, stack: Stack) -> None:
        """compose's echod is the image echod:latest, HTTPS off, healthy by its HEALTHCHECK."""
        backend = inspect("container", stack.container("backend"))
        assert backend["ImageName"].endswith("echod:latest")
        assert "ECHOD_TLS_PORT=0" in backend["Config"]["Env"]
        status = subprocess.run(
            ["podman", "healthcheck", "run", stack.container("backend")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert status.returncode == 0, status.stdout + status.stderr


class TestStop:
    def test_compose_stop_drains_echod_and_it_exits_0(self, stack: Stack) -> None:
        """compose stop sends SIGTERM and waits stop_grace_period: echod drains, exits 0."""
        started = time.monotonic()
        done = stack.compose("stop", timeout=STOP_TIMEOUT * 3)
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - started < STOP_TIMEOUT
        state = inspect("container", stack.container("backend"))["State"]
        assert state["ExitCode"] == 0
