"""Load held, slow clients, scrapes and a wrong-password flood: service goes on, memory holds."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import statistics
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psutil

from bench.wrk import wrk
from tests.soak.support import SLACK, join, within
from tests.support.users import AUTH

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.processes import Echod

REFERENCE = Path(__file__).resolve().parents[2] / "bench" / "workloads" / "reference.lua"
MIB = 2**20
#: Seconds one wrong-password attempt may take before it counts as unanswered.
ATTEMPT_TIMEOUT = 60


def test_thousand_connections_are_held(
    make_echod: Any, soak_seconds: float, record: Callable[..., None]
) -> None:
    """1,000 concurrent connections for the whole run: no error, no timeout, flat memory."""
    echod = make_echod("--log-level", "info")
    url = echod.url + "/api/echo"
    wrk(url, REFERENCE, 2, 1000)  # warm-up: every connection opened once
    before = echod.pss_bytes()
    figures = wrk(url, REFERENCE, max(int(soak_seconds), 1), 1000)
    after = echod.pss_bytes()
    record(
        requests=int(figures["requests"]),
        rps=round(figures["rps"]),
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        errors=int(figures["socket_errors"] + figures["non_2xx"]),
        pss_before_mib=round(before / MIB, 1),
        pss_after_mib=round(after / MIB, 1),
    )
    assert figures["requests"] > 0
    assert figures["socket_errors"] == 0, "connect, read, write errors or timeouts"
    assert figures["non_2xx"] == 0
    assert after - before < 20 * MIB


async def _trickle(port: int, closed_after: list[float], stop: asyncio.Event) -> None:
    """Hold one slow connection open until ``stop``: when echod cuts it, open another.

    Each connection sends a request head one byte at a time and never finishes it; the
    seconds each one lasted until echod closed it go to ``closed_after``.
    """
    while not stop.is_set():
        reader, writer = await within(
            5, "opening a slow connection", asyncio.open_connection("127.0.0.1", port)
        )
        started = time.monotonic()
        writer.write(b"POST /api/echo HTTP/1.1\r\nHost: slow\r\n")
        try:
            while not stop.is_set():
                writer.write(b"X")
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(reader.read(1024), timeout=0.5) == b"":
                        closed_after.append(time.monotonic() - started)
                        break
        except (ConnectionError, OSError):
            closed_after.append(time.monotonic() - started)
        finally:
            writer.close()


def test_slowloris_is_cut_off_while_others_are_served(
    make_echod: Any, soak_seconds: float, record: Callable[..., None]
) -> None:
    """500 slow connections at all times; a normal client keeps its answers; echod cuts them."""
    header_timeout = 2.0
    echod = make_echod("--header-timeout", str(header_timeout))
    duration = max(soak_seconds, header_timeout + 3)
    latencies: list[float] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def normal_client() -> None:
        with httpx.Client(base_url=echod.url, auth=AUTH, timeout=5) as client:
            while not done.is_set():
                started = time.perf_counter()
                try:
                    response = client.post("/api/echo", content=b'{"normal": true}')
                    response.raise_for_status()
                except httpx.HTTPError as error:
                    failures.append(error)
                latencies.append((time.perf_counter() - started) * 1000)
                time.sleep(0.02)

    async def slow_clients() -> list[float]:
        closed_after: list[float] = []
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_trickle(echod.port, closed_after, stop)) for _ in range(500)]
        await asyncio.sleep(duration)
        stop.set()
        await within(SLACK, "closing the slow connections", asyncio.gather(*tasks))
        return closed_after

    normal = threading.Thread(target=normal_client, daemon=True)
    normal.start()
    try:
        closed_after = asyncio.run(slow_clients())
    finally:
        done.set()
        join(normal, SLACK, "the normal client")
    latencies.sort()
    record(
        slow_connections_at_once=500,
        slow_connections_cut=len(closed_after),
        closed_after_s_max=round(max(closed_after, default=0), 2),
        normal_requests=len(latencies),
        normal_failures=len(failures),
        normal_p50_ms=round(statistics.median(latencies), 2),
        normal_p99_ms=round(latencies[int(len(latencies) * 0.99) - 1], 2),
        normal_max_ms=round(latencies[-1], 2),
    )
    assert failures == []
    assert len(closed_after) >= 500, "every slow connection is closed by the header timeout"
    assert max(closed_after) < header_timeout + 3
    assert statistics.median(latencies) < 100, "the normal client is answered in under 100 ms"


def _echod_connections(echod: Echod) -> list[tuple[int, int]]:
    """Local and remote ports of every established TCP connection echod's processes hold."""
    found: list[tuple[int, int]] = []
    for pid in echod.pids():
        with contextlib.suppress(psutil.Error):
            found.extend(
                (connection.laddr.port, connection.raddr.port)
                for connection in psutil.Process(pid).net_connections(kind="tcp")
                if connection.status == psutil.CONN_ESTABLISHED and connection.raddr
            )
    return found


def test_scrapes_every_100_ms_do_not_disturb_serving(
    make_echod: Any, soak_seconds: float, record: Callable[..., None]
) -> None:
    """/metrics scraped ten times a second costs the echo traffic little; echod calls no one.

    An unreachable Prometheus cannot affect echod: echod never opens a connection of its own
    (Prometheus pulls), which the test checks on every socket echod holds under load.
    """
    echod = make_echod()
    url = echod.url + "/api/echo"
    seconds = max(int(soak_seconds), 2)
    wrk(url, REFERENCE, 1, 50)
    quiet = wrk(url, REFERENCE, seconds, 50)
    scrapes: list[int] = []
    done = threading.Event()

    def scraper() -> None:
        with httpx.Client(base_url=echod.url, timeout=5) as client:
            while not done.wait(0.1):
                scrapes.append(client.get("/metrics").status_code)

    thread = threading.Thread(target=scraper, daemon=True)
    thread.start()
    try:
        scraped = wrk(url, REFERENCE, seconds, 50)
        connections = _echod_connections(echod)
    finally:
        done.set()
        join(thread, SLACK, "the scraper")
    record(
        scrapes=len(scrapes),
        scrape_failures=sum(status != 200 for status in scrapes),
        throughput_scraped_vs_quiet=round(scraped["rps"] / quiet["rps"], 2),
        p99_scraped_vs_quiet=round(scraped["p99_ms"] / quiet["p99_ms"], 2),
        outgoing_connections=sum(local != echod.port for local, _ in connections),
    )
    assert scrapes
    assert set(scrapes) == {200}
    assert scraped["socket_errors"] == scraped["non_2xx"] == 0
    assert connections, "the load's connections are visible"
    assert all(local == echod.port for local, _ in connections), "echod connected out"


def test_wrong_password_flood_leaves_valid_users_served(
    make_echod: Any, soak_seconds: float, record: Callable[..., None]
) -> None:
    """Hundreds of distinct wrong passwords a second: valid users keep being answered."""
    echod = make_echod("--log-level", "error")
    url = echod.url + "/api/echo"
    seconds = max(int(soak_seconds), 2)
    wrk(url, REFERENCE, 1, 50)
    quiet = wrk(url, REFERENCE, seconds, 50)
    before = echod.pss_bytes()
    outcome: dict[int, int] = {}
    done = threading.Event()

    async def attempt(n: int) -> None:
        # Raw sockets keep the flooder cheap, so that it measures echod, not the client.
        token = base64.b64encode(f"remarkablebob:wrong-{n}".encode())
        status = 0
        try:
            # A wrong password may wait its turn behind 63 others for bcrypt: on a busy
            # machine that takes seconds, so the bound is generous.
            async with asyncio.timeout(ATTEMPT_TIMEOUT):
                reader, writer = await asyncio.open_connection("127.0.0.1", echod.port)
                writer.write(
                    b"POST /api/echo HTTP/1.1\r\nHost: flood\r\nConnection: close\r\n"
                    b"Authorization: Basic " + token + b"\r\nContent-Length: 2\r\n\r\n{}"
                )
                status = int((await reader.readline()).split()[1])
                writer.close()
        except (OSError, IndexError, ValueError):  # TimeoutError is an OSError
            pass
        outcome[status] = outcome.get(status, 0) + 1

    async def flood() -> None:
        attempts, n = [], 0
        while not done.is_set():  # 40 every 0.1 s: 400 distinct wrong passwords a second
            attempts += [asyncio.create_task(attempt(n + k)) for k in range(40)]
            n += 40
            await asyncio.sleep(0.1)
        await within(ATTEMPT_TIMEOUT + SLACK, "the last wrong passwords", asyncio.gather(*attempts))

    flooder = threading.Thread(target=lambda: asyncio.run(flood()), daemon=True)
    flooder.start()
    try:
        time.sleep(1)
        flooded = wrk(url, REFERENCE, seconds, 50)
    finally:
        done.set()
        join(flooder, ATTEMPT_TIMEOUT + 2 * SLACK, "the wrong-password flood")
    after = echod.pss_bytes()
    sent = sum(outcome.values())
    record(
        wrong_passwords_sent=sent,
        wrong_per_second=round(sent / (seconds + 1)),
        answered_401=outcome.get(401, 0),
        answered_503=outcome.get(503, 0),
        valid_throughput_flood_vs_quiet=round(flooded["rps"] / quiet["rps"], 2),
        valid_p99_flood_vs_quiet=round(flooded["p99_ms"] / quiet["p99_ms"], 2),
        valid_errors=int(flooded["socket_errors"] + flooded["non_2xx"]),
        pss_growth_mib=round((after - before) / MIB, 1),
    )
    assert flooded["socket_errors"] == flooded["non_2xx"] == 0, "every valid request answered 200"
    assert set(outcome) <= {401, 503}, f"the flood got other answers: {outcome}"
    assert after - before < 20 * MIB
