"""make stack: echod and Prometheus as local processes, stopped together by Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.deploy.support import REPO, Prometheus
from tests.support.make import MakeJob, answers
from tests.support.processes import free_port
from tests.support.tools import require_tool

if TYPE_CHECKING:
    from collections.abc import Iterator

STACK = REPO / "scripts" / "stack.py"


class Stack:
    """scripts/stack.py on free ports, in its own process group like a terminal's job."""

    def __init__(self) -> None:
        """Pick the ports; :meth:`start` runs the script."""
        self.port, self.tls_port = free_port(), free_port()
        self.prometheus = Prometheus(free_port())
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Stack:
        """Run the script with the virtualenv's Python, as make stack does."""
        require_tool("prometheus", "Debian package prometheus")
        command = [
            sys.executable, str(STACK),
            "--port", str(self.port),
            "--tls-port", str(self.tls_port),
            "--prometheus-port", str(self.prometheus.port),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.prometheus.wait_ready(self.process)
        return self

    def interrupt(self) -> tuple[int, str]:
        """Press Ctrl-C: SIGINT to the script's process group; return its status and stderr."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        _, stderr = self.process.communicate(timeout=60)
        return self.process.returncode, stderr

    def close(self) -> None:
        """Kill whatever is left of the script (its children stop when it tells them)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()
        self.prometheus.stop()


@pytest.fixture
def stack() -> Iterator[Stack]:
    """The stack, running until its test ends."""
    running = Stack().start()
    yield running
    running.close()


class TestStack:
    def test_prometheus_scrapes_echod_until_ctrl_c_stops_both(self, stack: Stack) -> None:
        """Prometheus sees echod up with the rules loaded; Ctrl-C then stops both cleanly."""
        [up] = stack.prometheus.wait_for('up{job="echod"} == 1')
        assert up["metric"]["instance"] == f"localhost:{stack.port}"
        groups = stack.prometheus.api("rules")["groups"]
        assert {group["name"] for group in groups} == {"envoy", "echod"}
        # echod's development certificate is self-signed, as make stack runs it.
        health = httpx.get(f"https://localhost:{stack.tls_port}/health", verify=False)  # noqa: S501
        assert health.json() == {"status": "ok"}
        status, stderr = stack.interrupt()
        assert status == 0, stderr
        assert "stack: stopped" in stderr
        assert not answers(f"http://127.0.0.1:{stack.port}/")
        assert not answers(f"http://127.0.0.1:{stack.prometheus.port}/")


@pytest.fixture
def make_stack() -> Iterator[MakeJob]:
    """make stack on free ports, stopped after its test whatever happens."""
    require_tool("prometheus", "Debian package prometheus")
    port, tls_port, prometheus = free_port(), free_port(), free_port()
    running = MakeJob(
        "stack",
        f"--port {port} --tls-port {tls_port} --prometheus-port {prometheus}",
        [f"http://127.0.0.1:{port}/health", f"http://127.0.0.1:{prometheus}/-/ready"],
        stamp=".installed-dev",
    )
    yield running
    running.close()


class TestMakeStack:
    def test_ctrl_c_stops_make_echod_and_prometheus(self, make_stack: MakeJob) -> None:
        """Ctrl-C signals the whole process group: everything stops, nothing listens."""
        make_stack.interrupt()
        assert make_stack.stopped() == ([], [])

    def test_sigterm_to_make_alone_stops_the_stack(self, make_stack: MakeJob) -> None:
        """make passes SIGTERM on to the stack script, which stops echod and Prometheus."""
        make_stack.terminate()
        assert make_stack.stopped() == ([], [])
