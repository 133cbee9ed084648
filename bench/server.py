"""A local echod under measurement: its processes, their CPU time and their memory."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from bench.processes import cpu_seconds, process_tree
from echod.procfs import pss_bytes

ECHOD = Path(sys.executable).with_name("echod")


_GIVEN: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, and that this process was not given before.

    The kernel may hand out the same free port twice in a row, so two calls in a row (an
    HTTP and an HTTPS port) could otherwise clash.
    """
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


class HealthError(Exception):
    """A server under measurement ended, or did not answer /health in time."""


def wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Return once ``base``/health answers 200.

    Raises:
        HealthError: ``process`` ended first, or ``timeout`` seconds went by.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise HealthError(f"it exited with status {process.returncode} before /health answered")
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as page:  # noqa: S310
                if page.status == HTTPStatus.OK:
                    return
        except OSError:
            pass
        time.sleep(0.01)
    raise HealthError(f"/health did not answer within {timeout:g} s")


def statuses(base: str) -> dict[str, float]:
    """Requests answered so far, by status, as echod's /metrics counts them."""
    counts: dict[str, float] = {}
    url = base.replace("https:", "http:", 1) + "/metrics"
    with urllib.request.urlopen(url, timeout=5) as page:  # noqa: S310 - loopback
        for line in page.read().decode().splitlines():
            if match := re.match(r'http_requests_total\{.*status="(\d+)".*\} (\S+)$', line):
                counts[match.group(1)] = counts.get(match.group(1), 0) + float(match.group(2))
    return counts


@dataclass
class Server:
    """An echod process in its own session, with its CPU and memory readable."""

    args: list[str]
    log: Any = field(default_factory=tempfile.TemporaryFile)
    process: subprocess.Popen[bytes] | None = None
    url: str = ""

    def start(self, port: int) -> float:
        """Start echod and return the seconds until /health answered."""
        self.url = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        self.process = subprocess.Popen(
            [str(ECHOD), "--host", "127.0.0.1", "--port", str(port), *self.args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_healthy(self.url, self.process)
        except HealthError as error:
            raise SystemExit(f"echod: {error}") from error
        return time.monotonic() - started

    def pids(self) -> list[int]:
        """Every process of the echod instance."""
        return process_tree(self.process.pid) if self.process is not None else []

    def cpu_seconds(self) -> float:
        """User and system CPU seconds of every live process of the instance."""
        return cpu_seconds(self.pids())

    def pss_bytes(self) -> int:
        """The instance's memory: its processes' PSS, summed."""
        return sum(pss_bytes(pid) or 0 for pid in self.pids())

    def stop(self) -> None:
        """Stop with SIGTERM and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.log.close()
