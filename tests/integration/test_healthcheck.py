"""echod healthcheck against real sockets: a real echod, nothing, a silent server, a 503."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import threading
import time
from typing import TYPE_CHECKING

import pytest

from echod.healthcheck import Unhealthy, check
from tests.support.processes import ECHOD, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.processes import Echod

#: What the issue asks of the whole command, the interpreter's start included.
COMMAND_DEADLINE = 2.0


def run_healthcheck(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    """Run the installed ``echod healthcheck``; return its status, its output and its seconds."""
    started = time.monotonic()
    done = subprocess.run(
        [str(ECHOD), "healthcheck", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A loopback port whose kernel accepts connections that nobody ever answers."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        yield listening.getsockname()[1]


@contextlib.contextmanager
def answering_server(answer: bytes) -> Iterator[int]:
    """A loopback port that reads one request and sends ``answer`` to it."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        listening.settimeout(10)

        def serve() -> None:
            with contextlib.suppress(OSError):
                conn, _ = listening.accept()
                with conn:
                    conn.recv(4096)
                    conn.sendall(answer)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield listening.getsockname()[1]
        thread.join(10)


@pytest.mark.integration
class TestAgainstEchod:
    def test_healthy_echod_exits_0(self, echod: Echod) -> None:
        """echod answers /health 200: exit 0, and the status line is printed."""
        status, output, _ = run_healthcheck("--host", "127.0.0.1", "--port", str(echod.port))
        assert status == 0, output
        assert f"healthy: http://127.0.0.1:{echod.port}/health: HTTP/1.1 200 OK" in output

    def test_reads_the_port_from_echod_port(self, echod: Echod) -> None:
        """With ECHOD_PORT alone, as a container's HEALTHCHECK runs it, the probe finds echod."""
        status, output, _ = run_healthcheck(env={"ECHOD_PORT": str(echod.port)})
        assert status == 0, output

    def test_in_process_check_returns_the_status_line(self, echod: Echod) -> None:
        """check() returns the 200 status line."""
        assert check("127.0.0.1", echod.port) == "HTTP/1.1 200 OK"


@pytest.mark.integration
class TestUnhealthy:
    def test_nothing_serving_exits_1(self) -> None:
        """A port where nothing listens: exit 1 at once, naming the refusal."""
        status, output, seconds = run_healthcheck("--port", str(free_port()))
        assert status == 1
        assert "unhealthy" in output
        assert "refused" in output.lower()
        assert seconds < COMMAND_DEADLINE

    def test_a_silent_server_exits_1_within_two_seconds(self) -> None:
        """A server that accepts and never answers: exit 1 within 2 s, interpreter included."""
        with silent_server() as port:
            status, output, seconds = run_healthcheck("--port", str(port))
        assert status == 1
        assert "no answer within 1.5s" in output
        assert seconds < COMMAND_DEADLINE

    @pytest.mark.parametrize(
        ("answer", "reason"),
        [
            (
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
                "answered HTTP/1.1 503 Service Unavailable",
            ),
            (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP answer"),
            (b"", "closed before an answer"),
        ],
        ids=["503", "not-http", "closed"],
    )
    def test_anything_but_200_is_unhealthy(self, answer: bytes, reason: str) -> None:
        """Another status, another protocol or a closed connection raise Unhealthy."""
        with answering_server(answer) as port, pytest.raises(Unhealthy, match=re.escape(reason)):
            check("127.0.0.1", port)

    def test_a_slow_trickle_still_ends_at_the_deadline(self) -> None:
        """Bytes that arrive one by one, never a full line, do not extend the deadline."""
        ready = threading.Event()
        with socket.socket() as listening:
            listening.bind(("127.0.0.1", 0))
            listening.listen(1)
            port = listening.getsockname()[1]

            def trickle() -> None:
                conn, _ = listening.accept()
                with conn, contextlib.suppress(OSError):
                    ready.set()
                    for _ in range(40):
                        conn.sendall(b"H")
                        time.sleep(0.1)

            thread = threading.Thread(target=trickle, daemon=True)
            thread.start()
            started = time.monotonic()
            with pytest.raises(Unhealthy, match=re.escape("no answer within 0.5s")):
                check("127.0.0.1", port, timeout=0.5)
            seconds = time.monotonic() - started
            thread.join(10)
        assert ready.is_set()
        assert seconds < 1.0
