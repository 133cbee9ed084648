"""Hostile surroundings: a stdout that stalls, fills or is closed; a full or read-only /dev/shm.

echod serves on, or refuses at start in one line; it never crashes later.

The /dev/shm cases run echod in a mount namespace of its own (``unshare -m``), with a
small tmpfs mounted over /dev/shm: nothing outside the test sees them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.processes import ECHOD, START_TIMEOUT, free_port
from tests.support.tools import require_tool
from tests.support.users import AUTH
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from collections.abc import Iterator

#: The smallest log buffer echod takes: it fills after a few hundred lines.
SMALL_BUFFER = 64 * 1024
SHUTDOWN_TIMEOUT = 3.0


def _healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(f"echod exited with {process.returncode}")
        try:
            return httpx.get(url + "/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    eventually(answers, timeout=START_TIMEOUT, failure=f"no answer from {url}/health")


def _echoes(url: str, count: int) -> list[int]:
    with httpx.Client(auth=AUTH, timeout=10) as client:
        return [
            client.post(url + "/api/echo", content=b'{"a": 1}').status_code for _ in range(count)
        ]


def _metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def stalled() -> Iterator[tuple[subprocess.Popen[bytes], str, int]]:
    """An echod whose stdout is a pipe that nobody reads (yet): its process, URL, read end."""
    read_end, write_end = os.pipe()
    port = free_port()
    command = [
        str(ECHOD), "--host", "127.0.0.1", "--port", str(port), "--tls-port", "0",
        "--log-buffer-bytes", str(SMALL_BUFFER),
        "--shutdown-timeout", str(SHUTDOWN_TIMEOUT),
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=write_end,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        url = f"http://127.0.0.1:{port}"
        _healthy(url, process)
        yield process, url, read_end
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(read_end)


class TestStalledStdout:
    def test_service_goes_on_and_every_dropped_line_is_counted_then_reported(
        self, stalled: tuple[subprocess.Popen[bytes], str, int]
    ) -> None:
        """With no one reading stdout, 3,000 echoes and /health are all answered.

        The lines that did not fit are counted in echod_log_lines_dropped_total; once
        stdout is read again, one line says how many, and every line read is whole JSON.
        """
        process, url, read_end = stalled
        assert _echoes(url, 3000) == [200] * 3000
        assert httpx.get(url + "/health", timeout=2).status_code == 200
        dropped = _metric(url, "echod_log_lines_dropped_total")
        assert dropped > 1000
        chunks: list[bytes] = []
        reader = threading.Thread(target=_read_all, args=(read_end, chunks), daemon=True)
        reader.start()

        def reported() -> list[dict[str, object]]:
            lines = _whole_lines(b"".join(chunks))
            return [line for line in lines if line["message"] == "log lines dropped"]

        [report] = eventually(reported, timeout=10, failure="no 'log lines dropped' line")
        assert report["level"] == "warning"
        assert report["dropped"] == dropped == _metric(url, "echod_log_lines_dropped_total")
        process.send_signal(signal.SIGTERM)
        assert process.wait(SHUTDOWN_TIMEOUT + 5) == 0
        reader.join(5)
        lines = _whole_lines(b"".join(chunks))
        echoed = [line for line in lines if line.get("path") == "/api/echo"]
        assert len(echoed) + dropped >= 3000  # every line was written or counted
        assert lines[-1]["message"] == "echod stopped"

    def test_sigterm_exits_0_within_the_shutdown_timeout_while_stdout_stays_stalled(
        self, stalled: tuple[subprocess.Popen[bytes], str, int]
    ) -> None:
        """The last lines wait a second at most: the exit is not held by the reader."""
        process, url, _ = stalled
        assert _echoes(url, 1000) == [200] * 1000
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(SHUTDOWN_TIMEOUT + 5) == 0
        assert time.monotonic() - started < SHUTDOWN_TIMEOUT + 2


def _read_all(descriptor: int, chunks: list[bytes]) -> None:
    while chunk := os.read(descriptor, 65536):
        chunks.append(chunk)


def _whole_lines(data: bytes) -> list[dict[str, object]]:
    """Every whole line of ``data`` as JSON: a torn line fails the test."""
    whole, _, _ = data.rpartition(b"\n")
    lines = []
    for raw in whole.splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            pytest.fail(f"a line that is not whole JSON: {raw[:200]!r}")
    return lines


def test_closed_standard_descriptors_are_opened_on_dev_null() -> None:
    """Started with descriptors 0, 1 and 2 closed, echod serves, counts right, exits 0.

    Without the fix, the metrics file became descriptor 1 and took the log lines.
    """
    port = free_port()
    script = (
        f"exec {ECHOD} --host 127.0.0.1 --port {port} --tls-port 0 --log-level info <&- >&- 2>&-"
    )
    process = subprocess.Popen(["sh", "-c", script])
    try:
        url = f"http://127.0.0.1:{port}"
        _healthy(url, process)
        assert _echoes(url, 200) == [200] * 200
        sample = 'http_requests_total{method="POST",path="/api/echo",status="200"}'
        assert _metric(url, sample) == 200
        for descriptor in ("0", "1", "2"):
            target = Path(f"/proc/{process.pid}/fd/{descriptor}").readlink()
            assert target == Path(os.devnull)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _private_mounts() -> None:
    """Skip (or fail with CI set) where mount namespaces cannot be made."""
    require_tool("unshare", "util-linux package")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        message = "unshare -m needs root (CAP_SYS_ADMIN): mount namespaces are unavailable"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _in_namespace(setup: str, run: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``setup`` then ``run`` in a new mount namespace, under sh; its output as text."""
    _private_mounts()
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", f"set -e\n{setup}\nset +e\n{run}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _start_stop(port: int, extra: str = "") -> str:
    """sh: start echod, let it answer /health, stop it; print its status and what is left."""
    return (
        f"{ECHOD} --host 127.0.0.1 --port {port} --tls-port 0 --log-level warning {extra} "
        f"> $OUT 2> $ERR &\n"
        "pid=$!\n"
        "for i in $(seq 100); do\n"
        f"  if curl -s -o /dev/null 127.0.0.1:{port}/health; then break; fi\n"
        "  kill -0 $pid 2>/dev/null || break\n"
        "  sleep 0.1\n"
        "done\n"
        f"curl -s -o /dev/null -w 'health %{{http_code}}\\n' 127.0.0.1:{port}/health\n"
        f"curl -s -o /dev/null -w 'metrics %{{http_code}}\\n' 127.0.0.1:{port}/metrics\n"
        "kill -TERM $pid 2>/dev/null\n"
        "wait $pid\n"
        "echo status $?\n"
    )


class TestRuntimeDirectory:
    def test_a_full_dev_shm_is_exit_2_in_one_line_and_leaves_nothing(self) -> None:
        """No room on /dev/shm: exit 2 at start, naming the place and the bytes needed.

        Without the reservation at start, the first write to a mapped page that has no
        room behind it killed the process with SIGBUS, later.
        """
        require_tool("curl", "curl package")
        with tempfile.TemporaryDirectory() as logs:
            out, err = Path(logs, "out"), Path(logs, "err")
            done = _in_namespace(
                "mount -t tmpfs -o size=64k tmpfs /dev/shm",
                f"OUT={out} ERR={err}\n{_start_stop(free_port())}ls -A /dev/shm\n",
            )
            stderr = err.read_text()
        assert "status 2" in done.stdout, done
        assert "health 000" in done.stdout
        [error, hint] = stderr.splitlines()
        assert error.startswith("echod: error: /dev/shm: ")
        assert " bytes are needed for the runtime directory" in error
        assert "No space left on device" in error
        assert hint == "echod: run 'echod --help' for the settings"
        assert done.stdout.splitlines()[-1].startswith("status 2")  # ls printed nothing

    def test_no_room_for_the_state_is_exit_2_and_redis_needs_none(self) -> None:
        """Room for the metrics but not the state's 18 MiB: exit 2 at start, never later.

        With --state redis://..., the runtime directory holds no state, and the same
        /dev/shm is enough (Redis need not be up for echod to start).
        """
        require_tool("curl", "curl package")
        with tempfile.TemporaryDirectory() as logs:
            out, err = Path(logs, "out"), Path(logs, "err")
            redis = f"--state redis://127.0.0.1:{free_port()}/0"
            done = _in_namespace(
                "mount -t tmpfs -o size=8m tmpfs /dev/shm",
                f"OUT={out} ERR={err}\n{_start_stop(free_port())}ls -A /dev/shm\n"
                f"OUT={out}.redis ERR={err}.redis\n{_start_stop(free_port(), redis)}",
            )
            stderr = err.read_text()
        first, second = done.stdout.split("status ", 1)[1], done.stdout.rsplit("health", 1)[1]
        assert first.startswith("2"), done
        assert " bytes are needed for the runtime directory" in stderr
        assert "No space left on device" in stderr or "full" in stderr
        assert " 200" in second.splitlines()[0], done
        assert done.stdout.splitlines()[-1] == "status 0", done

    def test_a_read_only_dev_shm_moves_the_directory_with_one_warning(self) -> None:
        """It goes to the temporary directory, private, named in the warning; and goes away."""
        require_tool("curl", "curl package")
        with tempfile.TemporaryDirectory() as place, tempfile.TemporaryDirectory() as logs:
            out, err = Path(logs, "out"), Path(logs, "err")
            done = _in_namespace(
                "mount -t tmpfs -o size=4m,ro tmpfs /dev/shm",
                f"OUT={out} ERR={err} TMPDIR={place}\nexport TMPDIR\n"
                f"{_start_stop(free_port())}ls -A {place}\n",
            )
            lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert "health 200" in done.stdout, done
        assert "metrics 200" in done.stdout
        assert "status 0" in done.stdout
        assert done.stdout.splitlines()[-1] == "status 0"  # nothing left in the place
        shm = "/dev/shm"  # noqa: S108 - the place under test, in a namespace of its own
        [moved] = [line for line in lines if str(line["message"]).startswith(shm)]
        assert moved["level"] == "warning"
        assert f"made in {place} (mode 0700)" in str(moved["message"])
        assert "--runtime-dir" in str(moved["message"])

    def test_runtime_dir_on_a_full_file_system_is_exit_2(self) -> None:
        """--runtime-dir chooses the place, and no room there is the same clear error."""
        require_tool("curl", "curl package")
        with tempfile.TemporaryDirectory() as place, tempfile.TemporaryDirectory() as logs:
            out, err = Path(logs, "out"), Path(logs, "err")
            done = _in_namespace(
                f"mount -t tmpfs -o size=16k tmpfs {place}",
                f"OUT={out} ERR={err}\n{_start_stop(free_port(), f'--runtime-dir {place}')}"
                f"ls -A {place}\n",
            )
            stderr = err.read_text()
        assert done.stdout.splitlines()[-1] == "status 2", done
        assert stderr.startswith(f"echod: error: {place}: ")
        assert "bytes are needed" in stderr


def test_a_full_stdout_file_system_keeps_every_line_whole() -> None:
    """stdout to a file on a full file system: lines are dropped whole, never torn.

    What is in the file is whole JSON lines only, and echod serves on and exits 0.
    """
    require_tool("curl", "curl package")
    port = free_port()
    with tempfile.TemporaryDirectory() as place:
        log = Path(place, "echod.log")
        done = _in_namespace(
            f"mount -t tmpfs -o size=16k tmpfs {place}",
            f"OUT={log} ERR=/dev/null\n"
            + _start_stop(port, "--log-level info").replace(
                "kill -TERM",
                f"for i in $(seq 300); do curl -s -o /dev/null -u remarkablebob:2rFtex "
                f"127.0.0.1:{port}/api/echo -d '{{\"a\": 1}}'; done\n"
                f"curl -s -o /dev/null -w 'after %{{http_code}}\\n' 127.0.0.1:{port}/health\n"
                "kill -TERM",
            )
            + f"cat {log}\n",
        )
    assert "after 200" in done.stdout, done
    assert "status 0" in done.stdout
    written = done.stdout.split("status 0\n", 1)[1].encode()
    assert len(written) > 8 * 1024  # the file system did fill up
    assert written.endswith(b"\n")
    lines = _whole_lines(written)
    assert any(line.get("path") == "/api/echo" for line in lines)
