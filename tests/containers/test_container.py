"""echod's image running: read-only, non-root, healthy, PID 1 reaps, and podman stop drains."""

from __future__ import annotations

import re
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from echod.instance.serving import KILL_GRACE
from tests.containers.support import STOP_TIMEOUT, Container, podman, podman_status
from tests.support.users import AUTH, AUTH_HEADER
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.containers

ECHOD_UID = 10001


def process_uids(container: Container) -> dict[str, str]:
    """Each process of the container, by pid, with its real uid and command line."""
    status, output = container.exec(
        "sh",
        "-c",
        "for p in /proc/[0-9]*; do echo \"${p#/proc/} $(awk '/^Uid:/ {print $2}' $p/status)\""
        ' "$(tr "\\0" " " < $p/cmdline)"; done',
    )
    assert status == 0, output
    found = {}
    for line in output.splitlines():
        if match := re.fullmatch(r"(\d+) (\d+) (.*)", line.strip()):
            found[match[1]] = f"{match[2]} {match[3]}"
    return found


class TestServing:
    def test_echoes_on_3000(self, container: Container) -> None:
        """The authenticated echo answers on the published HTTP port."""
        answer = httpx.post(
            f"{container.url}/api/echo", auth=AUTH, content=b'{"foo": "bar"}', timeout=10
        )
        assert answer.status_code == 200
        assert answer.content == b'{"foo":"bar","echoed":true}\n'

    def test_echoes_over_https_on_10000(self, container: Container) -> None:
        """HTTPS on the published port, with HTTP/2, and the self-signed certificate."""
        with httpx.Client(http2=True, verify=False, timeout=10) as client:  # noqa: S501
            answer = client.post(
                f"{container.tls_url}/api/echo", auth=AUTH, content=b'{"tls": true}'
            )
        assert answer.status_code == 200
        assert answer.http_version == "HTTP/2"
        assert answer.json() == {"tls": True, "echoed": True}


class TestConfinement:
    def test_every_process_runs_as_uid_10001(self, container: Container) -> None:
        """tini and echod, one process for both listeners, run as 10001, not root."""
        processes = process_uids(container)
        echod = {pid: line for pid, line in processes.items() if "echod" in line}
        assert len(echod) == 2, processes  # tini, and echod
        for line in echod.values():
            assert line.split()[0] == str(ECHOD_UID), line

    def test_root_filesystem_is_read_only(self, container: Container) -> None:
        """The container runs with --read-only: writing under / or /opt/echod fails."""
        assert container.inspect()["HostConfig"]["ReadonlyRootfs"] is True
        for path in ("/probe", "/opt/echod/probe", "/home/probe"):
            status, output = container.exec("touch", path)
            assert status != 0
            assert "Read-only file system" in output or "Permission denied" in output

    def test_runtime_directory_is_on_the_default_dev_shm(self, container: Container) -> None:
        """echod's runtime directory lives on the container's own /dev/shm, as 10001."""
        assert container.inspect()["HostConfig"]["ShmSize"] == 65536000  # podman's default, 64m
        status, output = container.exec("sh", "-c", "stat -c '%u %a %n' /dev/shm/echod-*")
        assert status == 0, output
        runtime = f"{ECHOD_UID} 700 /dev/shm/echod-"
        assert [line for line in output.splitlines() if line.startswith(runtime)], output


class TestHealth:
    def test_podman_healthcheck_run_reports_healthy(self, container: Container) -> None:
        """podman healthcheck run runs echod healthcheck in the container: healthy."""
        status, output = podman_status("healthcheck", "run", container.name)
        assert status == 0, output
        assert container.inspect()["State"]["Health"]["Status"] == "healthy"

    def test_healthcheck_follows_echod_port(self, container: Container) -> None:
        """Asked with another ECHOD_PORT, where nothing serves, it says unhealthy: 1."""
        status, output = container.exec(
            "sh", "-c", "ECHOD_PORT=3999 echod healthcheck; echo status=$?"
        )
        assert status == 0
        assert "unhealthy: http://127.0.0.1:3999/health" in output
        assert "status=1" in output

    def test_healthcheck_fails_when_nothing_serves(self) -> None:
        """In a container of the image where echod is not running: exit 1, within 2 s."""
        started = time.monotonic()
        status, output = podman_status("run", "--rm", "--read-only", "echod:latest", "healthcheck")
        assert status == 1, output
        assert "unhealthy: http://127.0.0.1:3000/health" in output
        assert time.monotonic() - started < STOP_TIMEOUT


class TestInit:
    def test_pid_1_is_tini(self, container: Container) -> None:
        """tini is PID 1, and echod's supervisor is its child."""
        processes = process_uids(container)
        assert processes["1"].split(maxsplit=1)[1].startswith("tini -- echod")

    def test_orphans_are_reaped(self, container: Container) -> None:
        """A process left by another (exec'd here) is reaped by PID 1: no zombie remains."""
        status, output = container.exec("sh", "-c", "sleep 0.3 &")
        assert status == 0, output
        time.sleep(1.5)
        status, output = container.exec(
            "sh", "-c", "grep -l '^State:.*Z' /proc/[0-9]*/status; true"
        )
        assert status == 0
        assert "/status" not in output, f"zombies: {output}"

    def test_sighup_reaches_echod_and_reloads(self, container: Container) -> None:
        """podman kill --signal HUP: tini passes it on, echod reloads and goes on serving."""
        podman("kill", "--signal", "HUP", container.name)
        reloads = eventually(
            lambda: [line for line in container.log_lines() if line["message"] == "reloaded"],
            timeout=10,
            interval=0.1,
            failure=lambda: str(container.logs()),
        )
        assert reloads[0]["changed"] == []  # the image's demo users and certificate stay
        assert container.inspect()["State"]["Running"]
        answer = httpx.post(f"{container.url}/api/echo", auth=AUTH, content=b"{}", timeout=10)
        assert answer.status_code == 200


class TestLogs:
    def test_stdout_is_json_lines(self, container: Container) -> None:
        """Everything echod writes goes to the container's stdout, as JSON lines."""
        assert container.logs()[1] == ""
        lines = container.log_lines()
        assert any(line["message"] == "echod started" for line in lines)
        assert any(line.get("path") == "/api/echo" for line in lines)


def slow_upload(port: int, parts: list[bytes], pause: float, result: dict[str, Any]) -> None:
    """POST a body in parts with pauses between them, on a raw socket; keep the answer."""
    body = b"".join(parts)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            conn.sendall(
                b"POST /api/echo HTTP/1.1\r\nHost: x\r\nAuthorization: " + AUTH_HEADER.encode()
                + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
            )  # fmt: skip
            for part in parts:
                time.sleep(pause)
                conn.sendall(part)
            answer = b""
            while b'"echoed":true}' not in answer and (chunk := conn.recv(4096)):
                answer += chunk
        result["answer"] = answer
    except OSError as error:
        result["error"] = error


@pytest.fixture
def stoppable() -> Iterator[Container]:
    """A container of its own, since the test stops it."""
    made = Container("--read-only", env={"ECHOD_DRAIN_DELAY": "1"})
    try:
        yield made.start()
    finally:
        made.remove()


class TestStop:
    def test_stop_timeout_exceeds_drain_and_shutdown(self) -> None:
        """The stop timeout used here and documented is above drain + shutdown + kill grace."""
        from echod.settings.config import DEFAULT_SHUTDOWN_TIMEOUT  # noqa: PLC0415

        assert 1 + DEFAULT_SHUTDOWN_TIMEOUT + KILL_GRACE < STOP_TIMEOUT

    def test_podman_stop_answers_in_flight_requests_and_exits_0(self, stoppable: Container) -> None:
        """A request still uploading when podman stop comes is answered; the exit code is 0."""
        result: dict[str, Any] = {}
        upload = threading.Thread(
            target=slow_upload,
            args=(stoppable.port, [b'{"in_flight"', b": ", b"true}"], 0.8, result),
        )
        upload.start()
        time.sleep(0.5)
        status, seconds = stoppable.stop()
        upload.join(30)
        assert status == 0
        assert result.get("answer", b"").startswith(b"HTTP/1.1 200"), result
        assert result["answer"].endswith(b'{"in_flight":true,"echoed":true}\n')
        state = stoppable.inspect()["State"]
        assert state["ExitCode"] == 0
        assert seconds < STOP_TIMEOUT  # echod stopped by itself: podman never killed it
        lines = stoppable.log_lines()
        assert lines[-1]["message"] == "echod stopped"
        assert any(line["message"].startswith("shutting down on SIGTERM") for line in lines)
