"""Faults under load: SIGTERM while busy, and a worker killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import TYPE_CHECKING, Any

import httpx

from tests.soak.support import SLACK, Load, within

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.processes import Echod

CLIENTS = 20


async def _until_not_ready(echod: Echod) -> None:
    """A load balancer's view: poll /ready until it stops answering 200."""
    async with httpx.AsyncClient(base_url=echod.url, timeout=5) as probe:
        while (await probe.get("/ready")).status_code == 200:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def _until_replaced(echod: Echod, killed: int, count: int) -> None:
    """Poll until ``count`` workers run again and ``killed`` is not among them."""
    while True:
        current = echod.workers()
        if len(current) == count and killed not in current:
            return
        await asyncio.sleep(0.05)


def test_sigterm_under_load_loses_nothing(
    make_echod: Any, soak_seconds: float, record: Callable[..., None]
) -> None:
    """/ready turns 503 first; clients that follow it lose no request; every line is logged."""
    drain, timeout = 2.0, 10.0
    echod = make_echod("--drain-delay", str(drain), "--shutdown-timeout", str(timeout))
    load = Load(echod.url, CLIENTS)
    busy = max(soak_seconds, 2)
    timeline: dict[str, float] = {}

    async def scenario() -> None:
        running = asyncio.create_task(load.run(busy + drain + SLACK))
        await asyncio.sleep(busy)
        timeline["sigterm"] = time.monotonic()
        echod.signal(signal.SIGTERM)
        await within(drain + 5, "waiting for /ready to turn 503", _until_not_ready(echod))
        timeline["ready_503"] = time.monotonic()
        load.stop.set()
        await running

    asyncio.run(scenario())
    status = echod.wait(drain + timeout + 10)
    timeline["exited"] = time.monotonic()
    logged = [line["requestId"] for line in echod.log_lines() if "status" in line]
    failed = load.failed()
    record(
        requests=len(load.sent),
        failed=len(failed),
        lines_logged=len(logged),
        sigterm_to_ready_503_ms=round((timeline["ready_503"] - timeline["sigterm"]) * 1000),
        sigterm_to_exit_s=round(timeline["exited"] - timeline["sigterm"], 2),
        exit_status=status,
    )
    assert len(load.sent) > 0
    assert failed == {}
    assert sorted(logged) == sorted(load.sent), "every request has its one log line"
    assert status == 0
    assert timeline["exited"] - timeline["sigterm"] < drain + timeout + 3


def test_a_killed_worker_is_replaced_and_service_goes_on(
    make_echod: Any, soak_seconds: float, record: Callable[..., None]
) -> None:
    """SIGKILL one of two workers: it is replaced; only requests on its connections fail."""
    echod = make_echod("--workers", "2")
    load = Load(echod.url, CLIENTS)
    half = max(soak_seconds / 2, 1)
    timeline: dict[str, float] = {}
    workers_before = echod.workers()

    async def scenario() -> None:
        # The kill runs in the load's own loop, so the stop event is set from that loop.
        running = asyncio.create_task(load.run(2 * half + SLACK))
        await asyncio.sleep(half)
        timeline["killed"] = time.monotonic()
        os.kill(workers_before[0], signal.SIGKILL)
        await within(
            30,
            "waiting for the killed worker's replacement",
            _until_replaced(echod, workers_before[0], len(workers_before)),
        )
        timeline["replaced"] = time.monotonic()
        await asyncio.sleep(half)
        load.stop.set()
        await running

    asyncio.run(scenario())
    failed = load.failed()
    after = [rid for rid in load.sent if load.sent_at[rid] > timeline["replaced"] + 0.5]
    metrics = httpx.get(echod.url + "/metrics").text
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith('http_requests_total{method="POST",path="/api/echo",status="200"}')
    )
    record(
        requests=len(load.sent),
        failed=len(failed),
        failure_kinds=sorted({str(answer) for answer in failed.values()}),
        replaced_after_s=round(timeline["replaced"] - timeline["killed"], 2),
        counted_200=int(counted),
        answered_200=len(load.sent) - len(failed),
    )
    assert len(failed) <= CLIENTS, "more requests failed than were in flight on the dead worker"
    assert after, "requests were sent after the replacement"
    assert all(load.answers[rid] == 200 for rid in after), "a request failed after the replacement"
    # Counts survive the worker: what it counted before dying stays in the totals, so the
    # count differs from the answers the clients saw by at most the requests in flight.
    assert abs(counted - (len(load.sent) - len(failed))) <= CLIENTS
