"""Faults under load: SIGTERM while busy, and a worker killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from bench.server import tree
from tests.integration.support import AUTH

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.integration.support import Echod

CLIENTS = 20


def _workers(echod: Echod) -> list[int]:
    """echod's worker processes: those with no child of their own."""
    assert echod.process is not None
    pids = tree(echod.process.pid)
    parents = set()
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        parents.add(int(stat[stat.rindex(")") + 2 :].split()[1]))
    return [pid for pid in pids if pid not in parents]


async def _load(
    echod: Echod,
    stop: asyncio.Event,
    sent: list[str],
    answers: dict[str, int | str],
    sent_at: dict[str, float] | None = None,
) -> None:
    """CLIENTS clients on kept-alive connections, each sending until ``stop``."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=echod.url, auth=AUTH, limits=limits, timeout=30
    ) as client:

        async def one_client(number: int) -> None:
            n = 0
            while not stop.is_set():
                rid = f"soak-{number}-{n}"
                n += 1
                sent.append(rid)
                if sent_at is not None:
                    sent_at[rid] = time.monotonic()
                try:
                    response = await client.post(
                        "/api/echo", content=b'{"soak": true}', headers={"x-request-id": rid}
                    )
                    answers[rid] = response.status_code
                except httpx.HTTPError as error:
                    answers[rid] = type(error).__name__

        await asyncio.gather(*(one_client(number) for number in range(CLIENTS)))


def test_sigterm_under_load_loses_nothing(
    make_echod: Any, soak_seconds: float, record: Callable[..., None]
) -> None:
    """/ready turns 503 first; clients that follow it lose no request; every line is logged."""
    drain, timeout = 2.0, 10.0
    echod = make_echod("--drain-delay", str(drain), "--shutdown-timeout", str(timeout))
    sent: list[str] = []
    answers: dict[str, int | str] = {}
    timeline: dict[str, float] = {}

    async def scenario() -> None:
        stop = asyncio.Event()
        load = asyncio.create_task(_load(echod, stop, sent, answers))
        await asyncio.sleep(max(soak_seconds, 2))
        timeline["sigterm"] = time.monotonic()
        echod.signal(signal.SIGTERM)
        async with httpx.AsyncClient(base_url=echod.url, timeout=5) as probe:
            # A load balancer's view: it polls /ready and stops sending on a 503.
            while (await probe.get("/ready")).status_code == 200:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        timeline["ready_503"] = time.monotonic()
        stop.set()
        await load

    asyncio.run(scenario())
    status = echod.wait(drain + timeout + 10)
    timeline["exited"] = time.monotonic()
    logged = [line["requestId"] for line in echod.log_lines() if "status" in line]
    failed = {rid: answer for rid, answer in answers.items() if answer != 200}
    record(
        requests=len(sent),
        failed=len(failed),
        lines_logged=len(logged),
        sigterm_to_ready_503_ms=round((timeline["ready_503"] - timeline["sigterm"]) * 1000),
        sigterm_to_exit_s=round(timeline["exited"] - timeline["sigterm"], 2),
        exit_status=status,
    )
    assert len(sent) > 0
    assert failed == {}
    assert sorted(logged) == sorted(sent), "every request has its one log line"
    assert status == 0
    assert timeline["exited"] - timeline["sigterm"] < drain + timeout + 3


def test_a_killed_worker_is_replaced_and_service_goes_on(
    make_echod: Any, soak_seconds: float, record: Callable[..., None]
) -> None:
    """SIGKILL one of two workers: it is replaced; only requests on its connections fail."""
    echod = make_echod("--workers", "2")
    sent: list[str] = []
    answers: dict[str, int | str] = {}
    sent_at: dict[str, float] = {}
    timeline: dict[str, float] = {}
    workers_before = _workers(echod)
    stop = asyncio.Event()

    def kill_one() -> None:
        time.sleep(max(soak_seconds / 2, 1))
        timeline["killed"] = time.monotonic()
        os.kill(workers_before[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            current = _workers(echod)
            if len(current) == len(workers_before) and workers_before[0] not in current:
                timeline["replaced"] = time.monotonic()
                break
            time.sleep(0.05)
        time.sleep(max(soak_seconds / 2, 1))
        timeline["stopped"] = time.monotonic()
        stop.set()

    killer = threading.Thread(target=kill_one)
    killer.start()
    asyncio.run(_load(echod, stop, sent, answers, sent_at))
    killer.join()
    failed = {rid: answer for rid, answer in answers.items() if answer != 200}
    after = [rid for rid in sent if sent_at[rid] > timeline.get("replaced", float("inf")) + 0.5]
    metrics = httpx.get(echod.url + "/metrics").text
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith('http_requests_total{method="POST",path="/api/echo",status="200"}')
    )
    record(
        requests=len(sent),
        failed=len(failed),
        failure_kinds=sorted({str(answer) for answer in failed.values()}),
        replaced_after_s=round(timeline["replaced"] - timeline["killed"], 2),
        counted_200=int(counted),
        answered_200=len(sent) - len(failed),
    )
    assert "replaced" in timeline, "the killed worker was not replaced"
    assert len(failed) <= CLIENTS, "more requests failed than were in flight on the dead worker"
    assert after, "requests were sent after the replacement"
    assert all(answers[rid] == 200 for rid in after), "a request failed after the replacement"
    # Counts survive the worker: what it counted before dying stays in the totals, so the
    # count differs from the answers the clients saw by at most the requests in flight.
    assert abs(counted - (len(sent) - len(failed))) <= CLIENTS
