"""Several workers: one instance, one set of metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.users import AUTH

SAMPLE = 'http_requests_total{method="POST",path="/api/echo",status="200"}'


def test_metrics_sum_over_two_workers(make_echod: Any) -> None:
    """With --workers 2, every scrape, whichever worker answers it, shows every request."""
    echod = make_echod("--workers", "2")
    for _ in range(40):  # a new connection each time, so both workers get some
        httpx.post(echod.url + "/api/echo", content=b"{}", auth=AUTH)
    for _ in range(10):
        text = httpx.get(echod.url + "/metrics").text
        assert f"{SAMPLE} 40.0" in text.splitlines()
        assert "echod_processes 3.0" in text.splitlines()  # the supervisor and 2 workers


def test_one_worker_is_one_process_and_n_workers_n_plus_one(make_echod: Any) -> None:
    """--workers 1 (the default) is one process for both listeners; --workers 3 is four."""
    one = make_echod(tls=True)
    assert len(one.pids()) == 1
    assert one.workers() == [one.process.pid]
    three = make_echod("--workers", "3", tls=True)
    assert len(three.pids()) == 4
    assert len(three.workers()) == 3


def _threads(pid: int) -> list[str]:
    return [path.read_text().strip() for path in Path(f"/proc/{pid}/task").glob("*/comm")]


def test_the_supervisor_loads_no_granian_and_each_worker_its_own_allocator(
    make_echod: Any,
) -> None:
    """granian (and its jemalloc) load in the workers, after the fork, not in the supervisor.

    A jemalloc that a process inherits by fork has no background thread, and then keeps
    the memory a burst took (echod.instance.allocators).
    """
    echod = make_echod("--workers", "2", tls=True)
    supervisor = echod.process.pid
    assert "_granian" not in Path(f"/proc/{supervisor}/maps").read_text()
    assert "jemalloc_bg_thd" not in _threads(supervisor)
    for worker in echod.workers():
        assert "_granian" in Path(f"/proc/{worker}/maps").read_text()
        assert "jemalloc_bg_thd" in _threads(worker)


def test_one_process_has_the_allocator_background_thread(make_echod: Any) -> None:
    """--workers 1: the one process loads granian with jemalloc's background thread on."""
    echod = make_echod()
    assert "jemalloc_bg_thd" in _threads(echod.process.pid)
