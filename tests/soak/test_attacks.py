"""Attacks: idle sockets, slow bodies, WebSocket floods and HTTP/2 streams with no window.

Service goes on, memory stays bounded, and what an attack took is handed back when it
ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Self

import h2.config
import h2.connection
import h2.settings
import httpx
import psutil
import pytest

from tests.soak.support import SLACK, join, within
from tests.support.floods import flood
from tests.support.users import AUTH_HEADER
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.processes import Echod

MIB = 2**20
IDLE_SOCKETS = 2000
HEADER_TIMEOUT = 3.0
#: granian's TLS handshake timeout, which echod cannot set (docs/upstream.md, report 4).
TLS_HANDSHAKE_TIMEOUT = 10.0


def _rss(echod: Echod) -> int:
    assert echod.process is not None
    return psutil.Process(echod.process.pid).memory_info().rss


class _Probe:
    """GET /health every 100 ms from a thread; each answer's time, and every failure."""

    def __init__(self, url: str, *, verify: bool = True) -> None:
        self.url = url
        self.verify = verify
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        join(self._thread, SLACK, "the /health probe")

    def _run(self) -> None:
        while not self._done.is_set():
            started = time.monotonic()
            try:
                # A new connection each time: it has to get past the idle ones.
                status = httpx.get(self.url, timeout=HEADER_TIMEOUT, verify=self.verify).status_code
                if status != 200:
                    self.failures.append(f"status {status}")
            except httpx.HTTPError as error:
                self.failures.append(repr(error))
            self.latencies.append(time.monotonic() - started)
            time.sleep(0.1)


@pytest.mark.parametrize("listener", ["http", "https"])
def test_idle_sockets_do_not_stop_health(
    make_echod: Any, soak_seconds: float, record: Callable[..., None], listener: str
) -> None:
    """2,000 sockets that send nothing: /health answers all along, and the idle ones close.

    On the plain port they close after --header-timeout; on HTTPS after granian's fixed
    TLS handshake timeout of 10 s.
    """
    echod = make_echod("--header-timeout", str(HEADER_TIMEOUT), tls=True)
    port = echod.port if listener == "http" else echod.tls_port
    url = (echod.url if listener == "http" else echod.tls_url) + "/health"
    limit = HEADER_TIMEOUT if listener == "http" else TLS_HANDSHAKE_TIMEOUT
    closed_after: list[float] = []

    async def hold(opened: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            async with asyncio.timeout(limit + SLACK):
                await reader.read(1)  # EOF (or a reset) when echod closes it
        except (ConnectionError, OSError):
            pass
        closed_after.append(time.monotonic() - opened)
        writer.close()

    async def attack() -> None:
        opened = time.monotonic()
        tasks = [asyncio.create_task(hold(opened)) for _ in range(IDLE_SOCKETS)]
        await within(limit + SLACK, "the idle sockets", asyncio.gather(*tasks))

    with _Probe(url, verify=False) as probe:
        asyncio.run(attack())
        time.sleep(min(soak_seconds, 5))
    record(
        listener=listener,
        idle_sockets=IDLE_SOCKETS,
        closed_after_s_max=round(max(closed_after), 2),
        health_probes=len(probe.latencies),
        health_failures=len(probe.failures),
        health_max_s=round(max(probe.latencies), 3),
    )
    assert probe.failures == []
    assert max(probe.latencies) < HEADER_TIMEOUT
    assert len(closed_after) == IDLE_SOCKETS
    assert max(closed_after) < limit + 3


def test_slow_bodies_get_408_while_others_are_served(
    make_echod: Any, soak_seconds: float, record: Callable[..., None]
) -> None:
    """1,000 authenticated requests sending their body a byte a second: each gets 408.

    Without --body-timeout they held their connections for as long as they liked; now
    each is answered 408 and closed after it, and /health is answered meanwhile.
    """
    body_timeout = 3.0
    echod = make_echod("--body-timeout", str(body_timeout))
    statuses: list[bytes] = []
    answered_after: list[float] = []

    async def slow() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", echod.port)
        started = time.monotonic()
        writer.write(
            f"POST /api/echo HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH_HEADER}\r\n"
            "Content-Length: 100\r\n\r\n{".encode()
        )
        try:
            while not (answer := await asyncio.wait_for(reader.read(100), 1.0)):
                pass
        except TimeoutError:
            answer = b""
            while not answer and time.monotonic() - started < body_timeout + SLACK:
                writer.write(b" ")
                with contextlib.suppress(TimeoutError):
                    answer = await asyncio.wait_for(reader.read(100), 1.0)
        except (ConnectionError, OSError):
            answer = b"reset"
        statuses.append(answer.split(b"\r\n")[0])
        answered_after.append(time.monotonic() - started)
        writer.close()

    async def attack() -> None:
        tasks = [asyncio.create_task(slow()) for _ in range(1000)]
        await within(body_timeout + 2 * SLACK, "the slow bodies", asyncio.gather(*tasks))

    with _Probe(echod.url + "/health") as probe:
        asyncio.run(attack())
        time.sleep(min(soak_seconds, 2))
    record(
        slow_bodies=len(statuses),
        answered_408=statuses.count(b"HTTP/1.1 408 Request Timeout"),
        answered_after_s_max=round(max(answered_after), 2),
        health_failures=len(probe.failures),
        health_max_s=round(max(probe.latencies), 3),
    )
    assert statuses == [b"HTTP/1.1 408 Request Timeout"] * 1000
    assert max(answered_after) < body_timeout + 3
    assert probe.failures == []


@pytest.mark.parametrize("kind", ["ping", "fragments"])
def test_a_websocket_flood_is_cut_at_the_memory_limit(
    make_echod: Any, soak_seconds: float, record: Callable[..., None], kind: str
) -> None:
    """Four clients flood (pings never read, or a message never finished), reconnecting.

    The process's memory stays near --ws-memory-limit, /health answers, and once the
    floods stop the memory is back near idle.
    """
    limit = 128 * MIB
    echod = make_echod("--ws-memory-limit", str(limit), "--log-level", "warning")
    idle = _rss(echod)
    peak = idle
    stop = time.monotonic() + max(soak_seconds, 5)
    ends: list[str] = []

    def flooder() -> None:
        while time.monotonic() < stop:
            ends.append(flood(echod.port, kind, stop - time.monotonic()).ended)

    with _Probe(echod.url + "/health") as probe, ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(flooder) for _ in range(4)]
        while not all(future.done() for future in futures):
            peak = max(peak, _rss(echod))
            time.sleep(0.02)
        for future in futures:
            future.result()
    settled = eventually(
        lambda: (rss := _rss(echod)) < idle + 32 * MIB and rss,
        timeout=10,
        failure=lambda: f"RSS {_rss(echod) / MIB:.0f} MiB, idle {idle / MIB:.0f} MiB",
        interval=0.2,
    )
    record(
        kind=kind,
        flooders=4,
        connections=len(ends),
        cut=ends.count("cut"),
        idle_mib=round(idle / MIB),
        peak_mib=round(peak / MIB),
        settled_mib=round(settled / MIB),
        health_failures=len(probe.failures),
    )
    assert probe.failures == []
    assert ends.count("cut") >= 1
    # Four flooders grow the process by tens of MB in the tenth of a second between two
    # looks, and by more when the loop that looks is busy with their frames: the peak
    # passes the limit by hundreds of MB at most (397 MiB seen against 128), not by the
    # gigabytes an unguarded flood reaches in these seconds.
    assert peak < limit + 512 * MIB


def test_zero_window_streams_are_bounded_and_freed_at_close(
    make_echod: Any, record: Callable[..., None]
) -> None:
    """20 HTTP/2 connections ask for 200 streams each of /openapi.json and read nothing.

    echod allows 32 streams per connection, so each connection holds at most 32 answers
    (a few MB), and everything is freed when the connections close.
    """
    echod = make_echod("--h2c")
    idle = _rss(echod)
    body = len(httpx.get(echod.url + "/openapi.json").content)
    sockets = []
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", echod.port))
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        connection.initiate_connection()
        connection.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        for _ in range(200):
            connection.send_headers(
                connection.get_next_available_stream_id(),
                [
                    (":method", "GET"),
                    (":path", "/openapi.json"),
                    (":scheme", "http"),
                    (":authority", f"127.0.0.1:{echod.port}"),
                ],
                end_stream=True,
            )
        sock.sendall(connection.data_to_send())
        sockets.append(sock)
    time.sleep(3)
    held = _rss(echod) - idle
    assert httpx.get(echod.url + "/health").status_code == 200
    for sock in sockets:
        sock.close()
    settled = eventually(
        lambda: (rss := _rss(echod)) < idle + 16 * MIB and rss,
        timeout=10,
        failure=lambda: f"RSS {_rss(echod) / MIB:.0f} MiB, idle {idle / MIB:.0f} MiB",
        interval=0.2,
    )
    record(
        connections=20,
        streams_asked_each=200,
        answer_bytes=body,
        held_mib=round(held / MIB, 1),
        held_per_connection_mib=round(held / 20 / MIB, 2),
        settled_above_idle_mib=round((settled - idle) / MIB, 1),
    )
    assert held / 20 < 32 * body * 1.5 + 1 * MIB
