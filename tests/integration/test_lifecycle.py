"""Lifecycle: start, readiness, graceful shutdown, timeouts and failures to start."""

from __future__ import annotations

import os
import pty
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from echod.instance.runtime import Runtime, RuntimeRef
from echod.telemetry.metric_layout import Layout
from tests.support.processes import ECHOD, free_port
from tests.support.users import AUTH, AUTH_HEADER
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from tests.support.processes import Echod


def slow_upload(echod: Echod, parts: list[bytes], pause: float, result: dict[str, Any]) -> None:
    """POST a body in parts with pauses between them, on a raw socket; keep the answer."""
    try:
        result["answer"] = _slow_upload(echod, parts, pause)
    except OSError as error:  # the server may cut the connection; that is the outcome
        result["error"] = error


def _slow_upload(echod: Echod, parts: list[bytes], pause: float) -> bytes:
    body = b"".join(parts)
    with socket.create_connection(("127.0.0.1", echod.port), timeout=30) as conn:
        conn.sendall(
            b"POST /api/echo HTTP/1.1\r\nHost: x\r\nAuthorization: " + AUTH_HEADER.encode()
            + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )  # fmt: skip
        for part in parts:
            time.sleep(pause)
            conn.sendall(part)
        answer = b""
        while b'"echoed":true}' not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer


class TestStart:
    def test_health_answers_within_a_second(self, make_echod: Any) -> None:
        """A cold start serves /health in under a second (tests allow slack on busy machines)."""
        echod = make_echod(start=False, tls=True)
        echod.start(wait=False)
        assert echod.wait_healthy() < 5.0

    def test_start_is_logged_as_json(self, make_echod: Any) -> None:
        """The start line says the version, the listeners and the workers."""
        echod = make_echod(tls=True)
        [started] = [line for line in echod.log_lines() if line["message"] == "echod started"]
        assert started["level"] == "info"
        assert started["listeners"] == [
            f"http://127.0.0.1:{echod.port}",
            f"https://127.0.0.1:{echod.tls_port}",
        ]
        assert started["workers"] == 1

    def test_ready_is_a_json_event_at_any_log_level(self, make_echod: Any) -> None:
        """Containers and log shippers see where echod listens, a curl line and the API doc."""
        echod = make_echod("--log-level", "error", tls=True)
        [event] = eventually(
            lambda: [line for line in echod.log_lines() if line["message"] == "echod ready"],
            timeout=5,
            failure=echod.stdout,
        )
        assert event["urls"] == [
            f"http://127.0.0.1:{echod.port}",
            f"https://127.0.0.1:{echod.tls_port}",
        ]
        assert event["openapi"] == f"http://127.0.0.1:{echod.port}/openapi.json"
        assert event["try"].startswith("curl -u remarkablebob:PASSWORD -X POST 127.0.0.1:")
        assert event["demoUsers"] is True
        assert echod.stderr() == "", "stderr is not a terminal: nothing plain is written"

    def test_a_terminal_also_gets_a_few_plain_lines(self) -> None:
        """On a terminal, stderr says where echod listens, what to try, and how to stop it."""
        port, tls_port = free_port(), free_port()
        controller, terminal = pty.openpty()
        process = subprocess.Popen(
            [str(ECHOD), "--host", "127.0.0.1", "--port", str(port), "--tls-port", str(tls_port)],
            stdout=subprocess.DEVNULL,
            stderr=terminal,
        )
        os.close(terminal)
        said = b""
        try:
            deadline = time.monotonic() + 15
            while b"Ctrl-C stops it." not in said and time.monotonic() < deadline:
                if select.select([controller], [], [], 0.5)[0]:
                    said += os.read(controller, 4096)
        finally:
            process.terminate()
            process.wait(30)
            os.close(controller)
        text = said.decode().replace("\r\n", "\n")
        assert "echod is ready:\n" in text
        assert f"  http://127.0.0.1:{port}\n" in text
        assert f"  https://127.0.0.1:{tls_port}  (self-signed certificate: curl -k)\n" in text
        assert f"try:  curl -u remarkablebob:2rFtex -X POST 127.0.0.1:{port}/api/echo" in text
        assert f"API:  http://127.0.0.1:{port}/openapi.json\n" in text

    def test_demo_users_are_warned_about_once(self, make_echod: Any) -> None:
        """Without --users-file, one warning says the demo credentials are in use."""
        echod = make_echod()
        warnings = [line for line in echod.log_lines() if "demo users" in line["message"]]
        assert len(warnings) == 1
        assert warnings[0]["level"] == "warning"

    def test_port_in_use_exits_1(self, make_echod: Any) -> None:
        """A busy port is an error, never a silently shared port."""
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            echod = make_echod(start=False, port=holder.getsockname()[1])
            echod.start(wait=False)
            assert echod.wait(15) == 1
        [error] = [line for line in echod.log_lines() if line["level"] == "error"]
        assert "Address already in use" in error["message"]

    def test_a_second_instance_on_the_same_port_exits_1(self, make_echod: Any) -> None:
        """Two echods never share a port, although granian binds with SO_REUSEPORT."""
        first = make_echod()
        second = make_echod(start=False, port=first.port)
        second.start(wait=False)
        assert second.wait(15) == 1

    def test_bad_settings_exit_2_before_serving(self) -> None:
        """The installed command exits 2 and names the flag and value."""
        done = subprocess.run(
            [str(ECHOD), "--log-level", "loud"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 2
        assert "--log-level='loud'" in done.stderr

    def test_the_command_line_loads_neither_server_nor_metrics_until_it_serves(self) -> None:
        """import echod.cli (and echod) leave granian and prometheus_client unloaded."""
        check = (
            "import sys, echod, echod.cli; "
            "print(sorted(m for m in ('granian', 'prometheus_client') if m in sys.modules))"
        )
        done = subprocess.run(
            [sys.executable, "-c", check], capture_output=True, text=True, timeout=30, check=True
        )
        assert done.stdout.strip() == "[]"

    def test_python_dash_m_runs_echod(self) -> None:
        """python -m echod is the same command."""
        done = subprocess.run(
            [sys.executable, "-m", "echod", "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0
        assert done.stdout.startswith("echod ")

    def test_environment_configures_and_flags_win(self, make_echod: Any) -> None:
        """ECHOD_MAX_BODY_BYTES applies; --max-body-bytes overrides it."""
        echod = make_echod(env={"ECHOD_MAX_BODY_BYTES": "10", "ECHOD_LOG_LEVEL": "warning"})
        assert (
            httpx.post(
                echod.url + "/api/echo", content=b'{"a": "long enough"}', auth=AUTH
            ).status_code
            == 413
        )
        flagged = make_echod("--max-body-bytes", "100", env={"ECHOD_MAX_BODY_BYTES": "10"})
        assert (
            httpx.post(
                flagged.url + "/api/echo", content=b'{"a": "long enough"}', auth=AUTH
            ).status_code
            == 200
        )


def runtime_directories(echod: Echod) -> list[Path]:
    """The runtime directories of echod's supervisor (on /dev/shm, as this machine has it)."""
    assert echod.process is not None
    return list(Path("/dev/shm").glob(f"echod-{echod.process.pid}-*"))  # noqa: S108


def private_key(directory: Path, supervisor: int) -> Path:
    """Where the runtime in ``directory`` keeps the private key in service."""
    runtime = Runtime(RuntimeRef(directory, supervisor, Layout(), "test"))
    try:
        return runtime.tls_files().key
    finally:
        runtime.store.close()
        runtime.reloads.close()


class TestRuntimeDirectory:
    def test_a_clean_stop_removes_it(self, make_echod: Any) -> None:
        """The directory, with the development key in it, goes when echod stops."""
        echod = make_echod(tls=True)
        [directory] = runtime_directories(echod)
        assert private_key(directory, echod.process.pid).is_file()
        assert echod.stop() == 0
        assert not directory.exists()

    def test_a_killed_instance_s_directory_is_removed_by_the_next_start(
        self, make_echod: Any
    ) -> None:
        """SIGKILL leaves the directory behind; the next echod removes it, not its own."""
        killed = make_echod(tls=True)
        [directory] = runtime_directories(killed)
        killed.signal(signal.SIGKILL)
        key = private_key(directory, killed.process.pid)
        assert killed.wait(10) == -signal.SIGKILL
        assert key.is_file()
        running = make_echod()
        [kept] = runtime_directories(running)
        assert not directory.exists()
        assert kept.is_dir()
        other = make_echod()
        assert kept.is_dir(), "a running instance's directory is never removed"
        assert other.stop() == 0


class TestShutdown:
    @pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
    def test_signal_exits_0_and_logs_the_stop(self, make_echod: Any, signum: int) -> None:
        """Both stop signals end in a clean exit with JSON stop lines."""
        echod = make_echod(tls=True)
        echod.signal(signum)
        assert echod.wait(20) == 0
        messages = [line["message"] for line in echod.log_lines()]
        assert f"shutting down on {signal.Signals(signum).name}: /ready answers 503" in messages
        assert messages[-1] == "echod stopped"

    def test_ready_turns_503_during_the_drain_delay(self, make_echod: Any) -> None:
        """After SIGTERM, /ready answers 503 while requests are still served."""
        echod = make_echod("--drain-delay", "2")
        with httpx.Client(base_url=echod.url, auth=AUTH) as client:
            assert client.get("/ready").status_code == 200
            echod.signal(signal.SIGTERM)
            time.sleep(0.5)
            ready = client.get("/ready")
            assert ready.status_code == 503
            assert ready.headers["content-type"] == "application/problem+json"
            assert client.post("/api/echo", content=b"{}").status_code == 200
        assert echod.wait(20) == 0

    def test_in_flight_request_finishes(self, make_echod: Any) -> None:
        """A body still uploading when SIGTERM arrives is answered before exit."""
        echod = make_echod("--shutdown-timeout", "10")
        result: dict[str, Any] = {}
        upload = threading.Thread(
            target=slow_upload, args=(echod, [b'{"slow"', b": ", b"true}"], 0.5, result)
        )
        upload.start()
        time.sleep(0.7)
        echod.signal(signal.SIGTERM)
        upload.join(20)
        assert result["answer"].startswith(b"HTTP/1.1 200")
        assert result["answer"].endswith(b'{"slow":true,"echoed":true}\n')
        assert echod.wait(20) == 0

    def test_requests_overrunning_the_timeout_are_cut_and_echod_still_exits(
        self, make_echod: Any
    ) -> None:
        """A client slower than --shutdown-timeout does not hold echod up."""
        echod = make_echod("--shutdown-timeout", "1")
        result: dict[str, Any] = {}
        upload = threading.Thread(
            target=slow_upload, args=(echod, [b"{", b"}"] + [b" "] * 20, 0.5, result), daemon=True
        )
        upload.start()
        time.sleep(0.7)
        started = time.monotonic()
        echod.signal(signal.SIGTERM)
        assert echod.wait(20) == 0
        assert time.monotonic() - started < 1 + 3  # the timeout, and slack for a busy machine
        assert any("refused to gracefully stop" in line["message"] for line in echod.log_lines())

    def test_every_log_line_is_written_before_exit(self, make_echod: Any) -> None:
        """Buffered request lines are flushed on SIGTERM: none is lost."""
        echod = make_echod()
        with httpx.Client(base_url=echod.url, auth=AUTH) as client:
            for n in range(200):
                client.post("/api/echo", content=b"{}", headers={"x-request-id": f"flush-{n}"})
        echod.signal(signal.SIGTERM)
        assert echod.wait(20) == 0
        ids = [line["requestId"] for line in echod.log_lines() if "status" in line]
        assert ids == [f"flush-{n}" for n in range(200)]


class TestTimeouts:
    def test_slow_header_is_cut_off_while_others_are_served(self, make_echod: Any) -> None:
        """A client that never finishes its head is dropped after --header-timeout."""
        echod = make_echod("--header-timeout", "1")
        with socket.create_connection(("127.0.0.1", echod.port), timeout=10) as slow:
            slow.sendall(b"POST /api/echo HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            assert httpx.get(echod.url + "/health").status_code == 200
            assert slow.recv(1024) == b""  # closed by echod
            assert 0.5 < time.monotonic() - started < 5

    def test_idle_keep_alive_connection_is_closed(self, make_echod: Any) -> None:
        """A kept-alive connection idle past --header-timeout is closed."""
        echod = make_echod("--header-timeout", "1")
        with socket.create_connection(("127.0.0.1", echod.port), timeout=10) as conn:
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.recv(4096).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert conn.recv(1024) == b""
            assert 0.5 < time.monotonic() - started < 5
