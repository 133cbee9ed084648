"""podman, and echod's image run as a container on free loopback ports, always removed."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.support.processes import free_port
from tests.support.waiting import eventually

#: The image make test-containers builds (make image).
IMAGE = "echod:latest"
#: Every container, compose project, network and volume of these tests starts with this.
PREFIX = "echod-test-"
START_TIMEOUT = 60.0
#: Above echod's drain delay, shutdown timeout and kill grace: podman's 10 s is too short.
STOP_TIMEOUT = 30


def podman(*args: str, timeout: float = 120, check: bool = True) -> str:
    """Run podman with ``args`` and return its stdout; fail the test if it fails."""
    binary = shutil.which("podman")
    if binary is None:
        pytest.fail("podman is missing: make test-containers installs it (Debian package podman)")
    done = subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def podman_status(*args: str, timeout: float = 120) -> tuple[int, str]:
    """Run podman with ``args``; return its exit status and what it printed."""
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    return done.returncode, done.stdout + done.stderr


def inspect(kind: str, name: str) -> dict[str, Any]:
    """``podman <kind> inspect <name>``: the one object, as a dictionary."""
    [found] = json.loads(podman(kind, "inspect", name))
    result: dict[str, Any] = found
    return result


def remove_leftovers() -> None:
    """Remove what a test run that was killed left behind: containers, then networks, volumes."""
    for kind, listing in (
        ("container", ["ps", "--all", "--format", "{{.Names}}"]),
        ("network", ["network", "ls", "--format", "{{.Name}}"]),
        ("volume", ["volume", "ls", "--format", "{{.Name}}"]),
    ):
        for name in podman(*listing).split():
            if name.startswith(PREFIX):
                podman(kind, "rm", "--force", name, check=False)


def wait_http(url: str, process: str, timeout: float = START_TIMEOUT) -> None:
    """Wait until ``url`` answers 200, or fail naming the container ``process``."""

    def answers() -> bool:
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(url, timeout=1, verify=False).status_code == 200  # noqa: S501
        return False

    eventually(
        answers,
        timeout=timeout,
        interval=0.2,
        failure=lambda: f"{url} did not answer 200: {podman('logs', process)}",
    )


class Container:
    """echod's image in a container: HTTP and HTTPS published on free loopback ports."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        """Prepare ``podman run`` with extra ``args`` and environment ``env``."""
        self.name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.port, self.tls_port = free_port(), free_port()
        self.args = args
        self.env = env or {}

    @property
    def url(self) -> str:
        """echod's HTTP port, as published."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        """echod's HTTPS port, as published."""
        return f"https://127.0.0.1:{self.tls_port}"

    def start(self) -> Container:
        """Run the container detached, and wait until both ports answer /health."""
        environment = [f"--env={key}={value}" for key, value in self.env.items()]
        podman(
            "run", "--detach", "--name", self.name,
            "--publish", f"127.0.0.1:{self.port}:3000",
            "--publish", f"127.0.0.1:{self.tls_port}:10000",
            "--stop-timeout", str(STOP_TIMEOUT),
            *environment, *self.args, IMAGE,
        )  # fmt: skip
        wait_http(f"{self.url}/health", self.name)
        wait_http(f"{self.tls_url}/health", self.name)
        return self

    def exec(self, *command: str) -> tuple[int, str]:
        """Run ``command`` in the container; return its status and output."""
        return podman_status("exec", self.name, *command, timeout=60)

    def inspect(self) -> dict[str, Any]:
        """``podman container inspect``."""
        return inspect("container", self.name)

    def logs(self) -> tuple[str, str]:
        """The container's stdout and stderr so far."""
        done = subprocess.run(
            ["podman", "logs", self.name], capture_output=True, text=True, timeout=60, check=False
        )
        return done.stdout, done.stderr

    def log_lines(self) -> list[dict[str, Any]]:
        """stdout as JSON lines; a line that is not JSON fails the test."""
        lines = []
        for raw in self.logs()[0].splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                pytest.fail(f"the container wrote a line that is not JSON: {raw!r}")
        return lines

    def stop(self) -> tuple[int, float]:
        """``podman stop`` with the stop timeout; return its status and seconds."""
        started = time.monotonic()
        status, _ = podman_status(
            "stop", "--time", str(STOP_TIMEOUT), self.name, timeout=STOP_TIMEOUT + 30
        )
        return status, time.monotonic() - started

    def remove(self) -> None:
        """Remove the container, running or not."""
        podman("rm", "--force", "--time", "0", self.name, check=False)
