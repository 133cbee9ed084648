"""Several workers: one instance, one set of metrics."""

from __future__ import annotations

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
