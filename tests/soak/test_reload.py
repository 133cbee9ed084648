"""Reloads under load: new users and certificates, with no failed answer and no stop."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from typing import TYPE_CHECKING, Any

import httpx
import trustme

from tests.soak.support import SLACK, Load, within
from tests.support.material import htpasswd, issue, replace, served_serial, verifying
from tests.support.users import PASSWORD, USER, basic

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.support.processes import Echod

#: Keep-alive clients on each listener.
CLIENTS = 10
RELOADS = 3
#: At most this share of requests may fail, each on a connection that a stopping worker closed.
CLOSED_UNDER_THEM = 0.001
#: How a request on a connection that a stopping worker closed fails.
TRANSPORT_ERRORS = {"ConnectError", "ReadError", "RemoteProtocolError", "WriteError"}
#: Seconds one reload of two workers per listener may take (it takes about two).
RELOAD_TIMEOUT = 30.0
#: A counter's samples in the exposition: every name that only ever grows.
COUNTER = re.compile(r"^(\w+(?:_total|_count|_sum|_bucket)(?:\{[^}]*\})?) (\S+)$", re.MULTILINE)


def counters(text: str) -> dict[str, float]:
    """Every counter sample of a /metrics text (the process metrics are not counters here)."""
    return {
        name: float(value)
        for name, value in COUNTER.findall(text)
        if not name.startswith(("process_", "python_"))
    }


class Scraper:
    """Scrapes /metrics every 100 ms and notes any counter that went back.

    Like Prometheus, it keeps its connection alive; a scrape that fails at the transport
    (its worker stopped) is counted in :attr:`failures`, and the next one reconnects.
    """

    def __init__(self, echod: Echod) -> None:
        """Scrape ``echod``'s plain listener."""
        self.url = echod.url + "/metrics"
        self.scrapes = 0
        self.failures: list[str] = []
        self.went_back: list[str] = []
        self.last: dict[str, float] = {}
        self.stop = asyncio.Event()

    async def run(self) -> None:
        """Scrape until :attr:`stop` is set."""
        async with httpx.AsyncClient(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    answer = await client.get(self.url)
                except httpx.TransportError as error:
                    self.failures.append(type(error).__name__)
                    continue
                now = counters(answer.text)
                self.went_back += [
                    f"{name}: {before} -> {now[name]}"
                    for name, before in self.last.items()
                    if now.get(name, 0.0) < before
                ]
                self.last, self.scrapes = now, self.scrapes + 1
                await asyncio.sleep(0.1)


def assert_never_reached(echod: Echod, failed: dict[str, int | str]) -> None:
    """Each failed request failed at the transport, before echod read it: safe to retry.

    When a reload stops a worker, granian closes the connections that are idle, and
    drops the TLS handshakes it has begun. A client whose connection was closed just as
    it sent a request (a kept-alive one, or one the old worker accepted in its last
    moment) sees a transport error, and echod never saw that request: it is not in the
    log, so it was neither answered nor counted.
    """
    assert set(failed.values()) <= TRANSPORT_ERRORS, failed
    logged = {str(line.get("requestId")) for line in echod.log_lines()}
    assert logged.isdisjoint(failed), sorted(logged & set(failed))


def _lines(echod: Echod, message: str) -> list[dict[str, Any]]:
    """echod's log lines with this message."""
    return [line for line in echod.log_lines() if line["message"] == message]


async def _reloaded(echod: Echod, count: int) -> dict[str, Any]:
    """Wait for the ``count``-th "reloaded" line; return it."""
    while len(_lines(echod, "reloaded")) < count:  # noqa: ASYNC110 - another process's output
        await asyncio.sleep(0.05)
    return _lines(echod, "reloaded")[count - 1]


async def _status(url: str, user: str, password: str, ca: trustme.CA) -> int:
    """The status of one echo as ``user``, on a new connection."""
    headers = {"authorization": basic(user, password)}
    async with httpx.AsyncClient(verify=verifying(ca), timeout=10) as client:
        return (await client.post(url + "/api/echo", json={}, headers=headers)).status_code


async def _on_both(echod: Echod, guest: int, ca: trustme.CA) -> list[int]:
    """The status that guest ``guest`` gets on each listener."""
    return [
        await _status(url, f"guest{guest}", f"pass{guest}", ca)
        for url in (echod.url, echod.tls_url)
    ]


def _users(number: int) -> bytes:
    """The load's user, and guest ``number`` (each reload swaps the guest)."""
    return htpasswd(**{USER: PASSWORD, f"guest{number}": f"pass{number}"})


def test_three_reloads_under_load_fail_no_request(
    make_echod: Any, tmp_path: Path, soak_seconds: float, record: Callable[..., None]
) -> None:
    """3 SIGHUPs swap users and certificate under keep-alive load on both listeners."""
    ca = trustme.CA()
    users, cert, key = tmp_path / "users", tmp_path / "cert.pem", tmp_path / "key.pem"
    replace(users, _users(0))
    issue(ca, cert, key)
    echod = make_echod(
        "--workers", "2", "--users-file", str(users), "--tls-cert", str(cert),
        "--tls-key", str(key), "--reload-interval", "0", tls=True,
    )  # fmt: skip
    supervisor = echod.process.pid
    loads = [
        Load(echod.url, CLIENTS, name="http"),
        Load(echod.tls_url, CLIENTS, verify=verifying(ca), name="https"),
    ]
    pause = max(soak_seconds / (RELOADS + 1), 1.0)
    checks: list[dict[str, Any]] = []

    async def reload(number: int) -> None:
        replace(users, _users(number))
        serial = issue(ca, cert, key)
        started = time.monotonic()
        echod.signal(signal.SIGHUP)
        line = await within(RELOAD_TIMEOUT, f"reload {number}", _reloaded(echod, number))
        checks.append(
            {
                "seconds": round(time.monotonic() - started, 2),
                "changed": line["changed"],
                "new_user": await _on_both(echod, number, ca),
                "removed_user": await _on_both(echod, number - 1, ca),
                "serial_served": [served_serial(echod.tls_port, ca) for _ in range(4)],
                "serial": serial,
            }
        )

    async def scenario() -> Scraper:
        scraper = Scraper(echod)
        seconds = soak_seconds + RELOADS * RELOAD_TIMEOUT
        running = [asyncio.create_task(load.run(seconds)) for load in loads]
        scraping = asyncio.create_task(scraper.run())
        for number in range(1, RELOADS + 1):
            await asyncio.sleep(pause)
            await reload(number)
        await asyncio.sleep(pause)
        for load in loads:
            load.stop.set()
        scraper.stop.set()
        await within(SLACK, "stopping the load", asyncio.gather(*running, scraping))
        return scraper

    scraper = asyncio.run(scenario())
    sent = sum(len(load.sent) for load in loads)
    failed = {rid: answer for load in loads for rid, answer in load.failed().items()}
    on_new_connections = [rid for load in loads for rid in load.failed() if rid in load.connected]
    record(
        requests_http=len(loads[0].sent),
        requests_https=len(loads[1].sent),
        failed=len(failed),
        failed_on_new_connections=len(on_new_connections),
        failure_kinds=sorted({str(answer) for answer in failed.values()}),
        non_2xx=sum(isinstance(answer, int) for answer in failed.values()),
        reload_seconds=[check["seconds"] for check in checks],
        scrapes=scraper.scrapes,
        scrape_failures=len(scraper.failures),
        counters_went_back=len(scraper.went_back),
    )
    assert sent > 0
    assert [answer for answer in failed.values() if isinstance(answer, int)] == [], "non-2xx"
    assert len(failed) <= CLOSED_UNDER_THEM * sent, failed
    assert_never_reached(echod, failed)
    for number, check in enumerate(checks, start=1):
        assert check["changed"] == ["--users-file", "--tls-cert", "--tls-key"], number
        assert check["new_user"] == [200, 200], number
        assert check["removed_user"] == [401, 401], number
        assert set(check["serial_served"]) == {check["serial"]}, number
    assert scraper.went_back == []
    assert scraper.scrapes > 0
    assert set(scraper.failures) <= TRANSPORT_ERRORS
    assert len(scraper.failures) <= 2 * RELOADS, "at most one per worker stopped"
    assert echod.process.pid == supervisor
    assert echod.process.poll() is None
    assert echod.metric('echod_reloads_total{result="success"}') == RELOADS


def test_bad_material_keeps_the_old_in_service_under_load(
    make_echod: Any, tmp_path: Path, soak_seconds: float, record: Callable[..., None]
) -> None:
    """A garbage certificate and a bad users line: nothing replaced, nothing failed."""
    ca = trustme.CA()
    users, cert, key = tmp_path / "users", tmp_path / "cert.pem", tmp_path / "key.pem"
    replace(users, _users(0))
    serial = issue(ca, cert, key)
    echod = make_echod(
        "--workers", "2", "--users-file", str(users), "--tls-cert", str(cert),
        "--tls-key", str(key), "--reload-interval", "0", tls=True,
    )  # fmt: skip
    workers = sorted(echod.workers())
    loads = [
        Load(echod.url, CLIENTS, name="http"),
        Load(echod.tls_url, CLIENTS, verify=verifying(ca), name="https"),
    ]
    half = max(soak_seconds / 2, 1.0)

    async def scenario() -> None:
        running = [asyncio.create_task(load.run(2 * half + SLACK)) for load in loads]
        await asyncio.sleep(half)
        replace(users, _users(0) + b"intruder:plaintext\n")
        replace(cert, b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
        echod.signal(signal.SIGHUP)
        await asyncio.sleep(half)
        for load in loads:
            load.stop.set()
        await within(SLACK, "stopping the load", asyncio.gather(*running))

    asyncio.run(scenario())
    failed = {rid: answer for load in loads for rid, answer in load.failed().items()}
    errors = [line for line in echod.log_lines() if line["message"].startswith("reload failed")]
    record(
        requests=sum(len(load.sent) for load in loads),
        failed=len(failed),
        workers_replaced=len(set(workers) - set(echod.workers())),
        error_lines=len(errors),
    )
    assert failed == {}
    assert sorted(echod.workers()) == workers, "no worker is replaced"
    assert served_serial(echod.tls_port, ca) == serial
    assert len(errors) == 1
    assert echod.metric('echod_reloads_total{result="failure"}') == 1
    assert echod.metric("echod_last_reload_success") == 0


def test_a_rotated_secret_is_picked_up_within_twice_the_interval(
    make_echod: Any, tmp_path: Path, soak_seconds: float, record: Callable[..., None]
) -> None:
    """A Kubernetes-style Secret volume swapped under load, at the default interval of 5 s."""
    ca = trustme.CA()

    def version(name: str, number: int) -> int:
        (tmp_path / name).mkdir()
        replace(tmp_path / name / "users", _users(number))
        return issue(ca, tmp_path / name / "tls.crt", tmp_path / name / "tls.key")

    version("..v1", 1)
    (tmp_path / "..data").symlink_to("..v1")
    for name in ("users", "tls.crt", "tls.key"):
        (tmp_path / name).symlink_to(f"..data/{name}")
    echod = make_echod(
        "--workers", "2", "--users-file", str(tmp_path / "users"),
        "--tls-cert", str(tmp_path / "tls.crt"), "--tls-key", str(tmp_path / "tls.key"), tls=True,
    )  # fmt: skip
    interval = 5.0  # the default
    load = Load(echod.url, CLIENTS)
    timeline: dict[str, float] = {}

    async def scenario() -> None:
        running = asyncio.create_task(load.run(soak_seconds + 4 * interval + SLACK))
        await asyncio.sleep(max(soak_seconds / 2, 1.0))
        serial = version("..v2", 2)
        (tmp_path / "..data.new").symlink_to("..v2")
        (tmp_path / "..data.new").replace(tmp_path / "..data")
        timeline["swapped"] = time.monotonic()
        await within(2 * interval + SLACK, "the reload", _reloaded(echod, 1))
        timeline["reloaded"] = time.monotonic()
        timeline["served"] = float(served_serial(echod.tls_port, ca) == serial)
        timeline["new_user"] = await _status(echod.url, "guest2", "pass2", ca)
        await asyncio.sleep(max(soak_seconds / 2, 1.0))
        load.stop.set()
        await within(SLACK, "stopping the load", running)

    asyncio.run(scenario())
    picked_up = timeline["reloaded"] - timeline["swapped"]
    record(
        interval_s=interval,
        picked_up_s=round(picked_up, 2),
        requests=len(load.sent),
        failed=len(load.failed()),
    )
    assert picked_up <= 2 * interval
    assert timeline["served"] == 1.0
    assert timeline["new_user"] == 200
    assert len(load.failed()) <= CLOSED_UNDER_THEM * len(load.sent)
    assert_never_reached(echod, load.failed())
