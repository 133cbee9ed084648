"""Reload: SIGHUP and changed files put new users and certificates in service, without a stop."""

from __future__ import annotations

import asyncio
import signal
import ssl
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trustme
from cryptography import x509
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.material import htpasswd, issue, replace, served_serial, verifying
from tests.support.users import basic

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.processes import Echod

#: Seconds a reload of one worker per listener may take here (it takes about one).
RELOAD_TIMEOUT = 15.0


class Files:
    """A users file, a certificate and its key, as an operator would rotate them."""

    def __init__(self, directory: Path) -> None:
        """Start with alice and bob, and a certificate from a test CA."""
        self.ca = trustme.CA()
        self.users = directory / "users"
        self.cert, self.key = directory / "cert.pem", directory / "key.pem"
        replace(self.users, htpasswd(alice="wonderland", bob="builder"))
        self.serial = issue(self.ca, self.cert, self.key)

    def args(self) -> tuple[str, ...]:
        """The flags that name them."""
        return (
            "--users-file", str(self.users),
            "--tls-cert", str(self.cert),
            "--tls-key", str(self.key),
        )  # fmt: skip


@pytest.fixture
def files(tmp_path: Path) -> Files:
    """Files for one echod."""
    return Files(tmp_path)


def status(echod: Echod, user: str, password: str) -> int:
    """The status of an echo sent as ``user``, on a new connection."""
    headers = {"authorization": basic(user, password)}
    return httpx.post(echod.url + "/api/echo", json={}, headers=headers, timeout=10).status_code


def development_serial(echod: Echod) -> int:
    """The serial of the self-signed certificate echod serves without --tls-cert."""
    pem = ssl.get_server_certificate(("127.0.0.1", echod.tls_port), timeout=5)
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


class TestSighup:
    def test_new_users_and_certificate_are_served_by_the_same_echod(
        self, make_echod: Any, files: Files
    ) -> None:
        """The new user works, the removed one gets 401, the new certificate is served."""
        echod = make_echod(*files.args(), "--reload-interval", "0", tls=True)
        assert status(echod, "bob", "builder") == 200
        assert served_serial(echod.tls_port, files.ca) == files.serial
        counted = echod.metric('http_requests_total{method="POST",path="/api/echo",status="200"}')
        replace(files.users, htpasswd(alice="wonderland", carol="singer"))
        serial = issue(files.ca, files.cert, files.key)
        echod.signal(signal.SIGHUP)
        [reloaded] = echod.wait_for_lines("reloaded")
        assert status(echod, "carol", "singer") == 200
        assert status(echod, "bob", "builder") == 401
        assert served_serial(echod.tls_port, files.ca) == serial
        assert echod.process.poll() is None
        assert reloaded["changed"] == ["--users-file", "--tls-cert", "--tls-key"]
        assert reloaded["users"] == 2
        assert int(reloaded["certSerial"], 16) == serial
        leaf = x509.load_pem_x509_certificate(files.cert.read_bytes())
        assert reloaded["certNotAfter"] == leaf.not_valid_after_utc.isoformat()
        assert echod.metric('echod_reloads_total{result="success"}') == 1
        assert echod.metric("echod_last_reload_success") == 1
        expiry = echod.metric("echod_tls_certificate_expiration_timestamp_seconds")
        assert expiry == leaf.not_valid_after_utc.timestamp()
        after = echod.metric('http_requests_total{method="POST",path="/api/echo",status="200"}')
        assert after == counted + 1, "the counts before the reload are kept"

    def test_a_garbage_certificate_keeps_the_old_one_in_service(
        self, make_echod: Any, files: Files
    ) -> None:
        """An error line, a failure counted, the old certificate and users still served."""
        echod = make_echod(*files.args(), "--reload-interval", "0", tls=True)
        replace(files.users, htpasswd(carol="singer"))
        replace(files.cert, b"not a certificate")
        echod.signal(signal.SIGHUP)
        [error] = echod.wait_for_lines("reload failed")
        assert error["level"] == "error"
        assert "--tls-cert=" in error["message"]
        assert "no PEM certificate" in error["message"]
        assert served_serial(echod.tls_port, files.ca) == files.serial
        assert status(echod, "bob", "builder") == 200
        assert echod.metric('echod_reloads_total{result="failure"}') == 1
        assert echod.metric("echod_last_reload_success") == 0
        assert echod.lines_starting("reloaded") == []
        assert echod.process.poll() is None

    def test_the_demo_users_and_development_certificate_stay(self, make_echod: Any) -> None:
        """They are made at start only: a reload changes nothing and replaces no worker."""
        echod = make_echod("--reload-interval", "0", tls=True)
        serial, workers = development_serial(echod), echod.workers()
        echod.signal(signal.SIGHUP)
        [reloaded] = echod.wait_for_lines("reloaded")
        assert reloaded["changed"] == []
        assert development_serial(echod) == serial
        assert echod.workers() == workers

    def test_a_storm_of_sighups_runs_one_reload_then_at_most_one_more(
        self, make_echod: Any, files: Files
    ) -> None:
        """Ten SIGHUPs in a second: never two reloads at once, and echod serves throughout."""
        echod = make_echod(*files.args(), "--reload-interval", "0", tls=True)
        replace(files.users, htpasswd(carol="singer"))
        for _ in range(10):  # within the first reload, which checks the files in a process
            echod.signal(signal.SIGHUP)
            time.sleep(0.005)
        echod.wait_for_lines("reloaded")
        time.sleep(2.5)  # room for a second reload to run and end
        first, *more = echod.lines_starting("reloaded")
        assert first["changed"] == ["--users-file"]
        assert [line["changed"] for line in more] in ([], [[]])
        assert status(echod, "carol", "singer") == 200
        assert echod.process.poll() is None

    def test_sighup_during_shutdown_is_ignored(self, make_echod: Any, files: Files) -> None:
        """echod drains and exits 0 as it would without it; nothing is reloaded."""
        echod = make_echod(*files.args(), "--drain-delay", "1", tls=True)
        replace(files.users, htpasswd(carol="singer"))
        echod.signal(signal.SIGTERM)
        time.sleep(0.3)
        for _ in range(3):
            echod.signal(signal.SIGHUP)
        assert echod.wait(30) == 0
        assert echod.lines_starting("reloaded") == []
        assert echod.lines_starting("echod stopped")

    def test_a_websocket_on_the_replaced_https_server_gets_a_close_frame(
        self, make_echod: Any, files: Files
    ) -> None:
        """A new certificate: the old server's WebSocket is closed (1005) and logged as shutdown."""
        echod = make_echod(*files.args(), "--reload-interval", "0", tls=True)

        async def scenario() -> tuple[int | None, float]:
            headers = {"authorization": basic("alice", "wonderland")}
            async with connect(
                f"wss://localhost:{echod.tls_port}/api/raw",
                additional_headers=headers,
                ssl=verifying(files.ca),
            ) as socket:
                await socket.send("before")
                assert await socket.recv() == "before"
                issue(files.ca, files.cert, files.key)
                started = time.monotonic()
                echod.signal(signal.SIGHUP)
                with pytest.raises(ConnectionClosed):
                    async with asyncio.timeout(RELOAD_TIMEOUT):
                        await socket.recv()
                return socket.close_code, time.monotonic() - started

        code, after = asyncio.run(scenario())
        assert code == 1005
        assert after < RELOAD_TIMEOUT
        echod.wait_for_lines("reloaded")
        [socket] = [line for line in echod.log_lines() if line.get("status") == 101]
        assert socket["closedBy"] == "shutdown"

    def test_new_users_leave_websockets_delays_and_streams_alone(
        self, make_echod: Any, files: Files
    ) -> None:
        """Users are swapped in place: what runs goes on, undisturbed, and ends as asked."""
        echod = make_echod(*files.args(), "--reload-interval", "0", "--max-delay", "60")
        auth = ("alice", "wonderland")

        async def scenario() -> tuple[httpx.Response, str]:
            headers = {"authorization": basic(*auth)}
            async with (
                httpx.AsyncClient(base_url=echod.url, auth=auth, timeout=60) as client,
                connect(
                    f"ws://127.0.0.1:{echod.port}/api/raw", additional_headers=headers
                ) as socket,
            ):
                delayed = asyncio.create_task(client.get("/api/inspect?delay_ms=2000"))
                await asyncio.sleep(0.5)
                replace(files.users, htpasswd(alice="wonderland", carol="singer"))
                echod.signal(signal.SIGHUP)
                await socket.send("after")
                echoed = await socket.recv()
                return await delayed, str(echoed)

        delayed, echoed = asyncio.run(scenario())
        assert echoed == "after"
        assert delayed.status_code == 200
        [reloaded] = echod.wait_for_lines("reloaded")
        assert reloaded["changed"] == ["--users-file"]
        assert status(echod, "carol", "singer") == 200

    def test_a_delay_and_a_stream_on_the_replaced_https_server_end_early_and_cleanly(
        self, make_echod: Any, files: Files
    ) -> None:
        """A waiting delay is answered at once, a stream ends after a whole event: both 200.

        The stream says it was cut short (event: shutdown), so that it never looks complete.
        """
        echod = make_echod(*files.args(), "--reload-interval", "0", "--max-delay", "60", tls=True)
        auth = ("alice", "wonderland")

        async def scenario() -> tuple[httpx.Response, httpx.Response, float]:
            async with httpx.AsyncClient(
                base_url=f"https://localhost:{echod.tls_port}",
                auth=auth,
                timeout=60,
                verify=verifying(files.ca),
            ) as client:
                delayed = asyncio.create_task(client.get("/api/inspect?delay_ms=60000"))
                streamed = asyncio.create_task(client.get("/api/stream?count=2&interval_ms=30000"))
                await asyncio.sleep(1.0)  # both are waiting on the old server
                issue(files.ca, files.cert, files.key)
                started = time.monotonic()
                echod.signal(signal.SIGHUP)
                answers = await asyncio.gather(delayed, streamed)
                return answers[0], answers[1], time.monotonic() - started

        delayed, streamed, after = asyncio.run(scenario())
        assert after < RELOAD_TIMEOUT, "not ended by the reload"
        assert delayed.status_code == 200
        assert delayed.json()["method"] == "GET"
        assert streamed.status_code == 200
        first, shutdown = streamed.text.split("\n\n")[:2]
        assert first.startswith("retry: 1000\nid: 1\n"), "one whole event, the first"
        assert shutdown == 'event: shutdown\ndata: {"lastEventId":1}', "then, that it was cut"
        assert streamed.text.count("\n\n") == 2
        echod.wait_for_lines("reloaded")

    def test_kept_alive_clients_are_told_to_move_before_the_old_server_stops(
        self, make_echod: Any, files: Files
    ) -> None:
        """An answer says Connection: close, the client reconnects, and nothing fails."""
        echod = make_echod(*files.args(), "--reload-interval", "0", tls=True)
        headers = {"authorization": basic("alice", "wonderland")}
        closing, errors = 0, []
        with httpx.Client(
            base_url=f"https://localhost:{echod.tls_port}",
            headers=headers,
            timeout=10,
            verify=verifying(files.ca),
        ) as client:
            issue(files.ca, files.cert, files.key)
            echod.signal(signal.SIGHUP)
            deadline = time.monotonic() + RELOAD_TIMEOUT
            while not echod.lines_starting("reloaded") and time.monotonic() < deadline:
                try:
                    response = client.post("/api/echo", json={})
                except httpx.TransportError as error:
                    errors.append(error)
                    continue
                assert response.status_code == 200
                closing += response.headers.get("connection") == "close"
        assert errors == []
        assert closing >= 1


class TestChangedFiles:
    def test_a_swapped_symlink_reloads_without_a_signal(
        self, make_echod: Any, tmp_path: Path
    ) -> None:
        """As Kubernetes updates a Secret volume; picked up within the interval and a reload."""
        for version, user in (("v1", "alice"), ("v2", "carol")):
            (tmp_path / version).mkdir()
            (tmp_path / version / "users").write_bytes(htpasswd(**{user: "secret"}))
        (tmp_path / "..data").symlink_to("v1")
        (tmp_path / "users").symlink_to("..data/users")
        echod = make_echod("--users-file", str(tmp_path / "users"), "--reload-interval", "1")
        assert status(echod, "alice", "secret") == 200
        (tmp_path / "..data.new").symlink_to("v2")
        swapped = time.monotonic()
        (tmp_path / "..data.new").replace(tmp_path / "..data")
        [reloaded] = echod.wait_for_lines("reloaded")
        assert time.monotonic() - swapped < 2 * 1 + 2, "not picked up within twice the interval"
        assert reloaded["changed"] == ["--users-file"]
        assert status(echod, "carol", "secret") == 200
        assert status(echod, "alice", "secret") == 401
