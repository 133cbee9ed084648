"""Real echod processes on free loopback ports, and the processes of an instance."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from bench.processes import process_tree
from bench.server import free_port
from echod.procfs import parent, pss_bytes
from scripts.stack import stop
from tests.support.waiting import eventually

__all__ = ["ECHOD", "START_TIMEOUT", "Echod", "finished_pid", "free_port", "raw_exchange"]

ECHOD = Path(sys.executable).with_name("echod")
START_TIMEOUT = 15.0


def finished_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def raw_exchange(
    echod: Echod, request: bytes, timeout: float = 5, *, answers: int | None = 1
) -> bytes:
    """Send raw bytes to echod's HTTP port; read ``answers`` whole answers, or until it closes.

    An answer is whole once its head and the ``Content-Length`` bytes after it are in,
    so a connection kept alive after it (a refused WebSocket handshake) costs no wait.
    With ``answers=None``, everything is read until echod closes or stays quiet.
    """
    with socket.create_connection(("127.0.0.1", echod.port), timeout=timeout) as conn:
        conn.sendall(request)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
                if answers is not None and _whole(received, answers):
                    break
        except TimeoutError:
            pass
    return received


def _whole(received: bytes, answers: int) -> bool:
    """Whether ``received`` holds ``answers`` whole answers.

    An answer is whole with its ``Content-Length`` bytes or, when chunked, its last chunk.
    """
    for _ in range(answers):
        head, separator, rest = received.partition(b"\r\n\r\n")
        if not separator:
            return False
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length" and value.isdigit():
                length = int(value)
            elif name == b"transfer-encoding" and value == b"chunked":
                end = rest.find(b"0\r\n\r\n")
                if end < 0:
                    return False
                length = end + 5
        if len(rest) < length:
            return False
        received = rest[length:]
    return True


class Echod:
    """One echod process: started with its arguments, stopped at the end of its test."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        tls: bool = False,
        port: int | None = None,
        tls_port: int | None = None,
        cwd: Path | None = None,
        log: Path | None = None,
    ) -> None:
        """Prepare echod on 127.0.0.1 with ``args``; HTTPS only when ``tls``.

        ``cwd`` is the directory it runs in, where relative file names in ``args`` point.
        ``log`` is a file for its stdout, which another process may read (by default a
        temporary file without a name).
        """
        self.port = port or free_port()
        self.tls_port = (tls_port or free_port()) if tls else 0
        self.args = [
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--tls-port", str(self.tls_port),
            *args,
        ]  # fmt: skip
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self._out = log.open("w+b") if log else tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The plain HTTP base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        """The HTTPS base URL."""
        return f"https://localhost:{self.tls_port}"

    def start(self, *, wait: bool = True) -> Echod:
        """Start the process and, by default, wait until /health answers."""
        self.process = subprocess.Popen(
            [str(ECHOD), *self.args],
            stdout=self._out,
            stderr=self._err,
            env=self.env,
            cwd=self.cwd,
        )
        if wait:
            self.wait_healthy()
            self.wait_for_lines("echod ready")
        return self

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> float:
        """Wait for GET /health to answer 200 on every listener; return the seconds it took.

        Each listener is its own process, so HTTPS may come up a moment after HTTP.
        """
        assert self.process is not None
        process = self.process
        started = time.monotonic()
        waiting = [self.url] + ([self.tls_url] if self.tls_port else [])

        def healthy() -> bool:
            if process.poll() is not None:
                pytest.fail(f"echod exited with {process.returncode}: {self.stderr()}")
            with contextlib.suppress(httpx.TransportError):
                # The development certificate is self-signed: readiness is all this checks.
                if httpx.get(waiting[0] + "/health", timeout=1, verify=False).status_code == 200:  # noqa: S501
                    waiting.pop(0)
            return not waiting

        eventually(
            healthy,
            timeout=timeout,
            interval=0.02,
            failure=lambda: f"echod did not answer {waiting[0]}/health",
        )
        return time.monotonic() - started

    def metric(self, sample: str) -> float:
        """The value of one sample line of /metrics (name and labels as written), 0 if absent."""
        for line in httpx.get(self.url + "/metrics").text.splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def pids(self) -> list[int]:
        """Every process of the instance: the supervisor, its listeners and their workers."""
        assert self.process is not None
        return process_tree(self.process.pid)

    def workers(self) -> list[int]:
        """The serving processes: with --workers N, the supervisor's children; else echod itself."""
        assert self.process is not None
        root = self.process.pid
        children = [
            pid
            for pid in self.pids()
            if parent(pid) == root and "echod.instance.checker" not in _command_line(pid)
        ]
        return children or [root]

    def pss_bytes(self) -> int:
        """The instance's memory: the PSS of its processes, summed."""
        return sum(pss_bytes(pid) or 0 for pid in self.pids())

    def signal(self, signum: int) -> None:
        """Send a signal to the supervisor."""
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        """Wait for the process to exit; return its status."""
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> int | None:
        """Stop with SIGTERM (SIGKILL after 30 s); return the exit status."""
        return None if self.process is None else stop(self.process)

    def stdout(self) -> str:
        """Everything echod wrote to stdout so far."""
        return _written(self._out).decode(errors="replace")

    def stderr(self) -> str:
        """Everything echod wrote to stderr so far."""
        return _written(self._err).decode(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """stdout's whole lines as JSON; a line that is not JSON fails the test.

        A line still being written (no newline yet) is left for the next call.
        """
        lines = []
        whole, _, _ = self.stdout().rpartition("\n")
        for raw in whole.splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                pytest.fail(f"echod wrote a line that is not JSON: {raw!r}")
        return lines

    def lines_starting(self, message: str) -> list[dict[str, Any]]:
        """The log lines whose message starts with ``message``, so far."""
        return [line for line in self.log_lines() if line["message"].startswith(message)]

    def wait_for_lines(
        self, message: str, count: int = 1, timeout: float = START_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` lines start with ``message``; return them all."""

        def found() -> list[dict[str, Any]]:
            lines = self.lines_starting(message)
            return lines if len(lines) >= count else []

        return eventually(
            found, timeout=timeout, failure=lambda: f"no {message!r} line: {self.stdout()}"
        )

    def request_lines(self, settle: float = 0.3) -> list[dict[str, Any]]:
        """The per-request log lines, after giving the buffers time to be written."""
        time.sleep(settle)
        return [line for line in self.log_lines() if "status" in line]

    def close(self) -> None:
        """Stop the process and release its output files."""
        self.stop()
        self._out.close()
        self._err.close()


def _written(file: IO[bytes]) -> bytes:
    """What echod wrote to ``file`` so far.

    echod shares the file's offset (its descriptor is a copy of ours), so it is read
    with ``pread``: moving the offset would make echod write over what it wrote before.
    """
    fd = file.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0)


def _command_line(pid: int) -> str:
    """The command line of ``pid``, or nothing if it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
