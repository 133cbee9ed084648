"""Load checks: a reload and a drain of the echod behind the proxy, under load.

Checks 16 and 17, with ``--include reload``: clients echo through the proxy while the
audit sends SIGHUP to each echod (``--origin-pid``), or SIGTERM to the last; no request
may fail.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

from echod.audit.report import FAIL, PASS, SKIP
from echod.procfs import alive

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from echod.audit.auditor import Audit
    from echod.audit.report import Check

__all__ = ["LOAD_CLIENTS", "SETTLE", "drain_under_load", "reload_under_load"]

#: Seconds the load runs around each signal.
SETTLE = 2.0
#: Clients sending the load.
LOAD_CLIENTS = 4


def reload_under_load(audit: Audit, check: Check) -> Check:
    """16: SIGHUP to every echod, one after the other, while clients send requests."""
    pids = audit.options.origin_pids
    if not pids:
        return check.judge(SKIP, "no --origin-pid: the audit may not signal echod")
    check.sent.append(
        f"{LOAD_CLIENTS} clients sending POST /api/echo; SIGHUP to {', '.join(map(str, pids))}"
    )

    def act() -> None:
        for pid in pids:
            time.sleep(SETTLE)
            os.kill(pid, signal.SIGHUP)
        time.sleep(SETTLE)

    return _under_load(audit, check, act, "reload")


def drain_under_load(audit: Audit, check: Check) -> Check:
    """17: SIGTERM to the last echod while clients send requests; it drains, none fails."""
    pids = audit.options.origin_pids
    if len(pids) < 2:  # noqa: PLR2004
        return check.judge(SKIP, "a drain needs two echod behind the proxy (--origin-pid twice)")
    pid = pids[-1]
    check.sent.append(f"{LOAD_CLIENTS} clients sending POST /api/echo; SIGTERM to {pid}")

    def act() -> None:
        time.sleep(SETTLE)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(SETTLE)

    return _under_load(audit, check, act, "drain")


def _under_load(audit: Audit, check: Check, act: Callable[[], None], what: str) -> Check:
    """Send requests from :data:`LOAD_CLIENTS` clients while ``act`` runs; none may fail."""
    done = threading.Event()
    tallies: list[Counter[str]] = [Counter() for _ in range(LOAD_CLIENTS)]
    threads = [
        threading.Thread(target=_load, args=(audit, done, tally), daemon=True) for tally in tallies
    ]
    for thread in threads:
        thread.start()
    try:
        act()
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=audit.target.timeout + 5)
    total: Counter[str] = sum(tallies, Counter())
    check.arrived.append(", ".join(f"{count} x {said}" for said, count in sorted(total.items())))
    answered = total["200"]
    failed = total.total() - answered
    if not answered:
        return check.judge(FAIL, "no request was answered")
    if failed:
        return check.judge(
            FAIL, f"{failed} of {failed + answered} requests failed during the {what}"
        )
    return check.judge(PASS, f"{answered} requests, none failed during the {what}")


def _load(audit: Audit, done: threading.Event, tally: Counter[str]) -> None:
    """One client of the load: echoes on a kept-alive connection until ``done``."""
    import httpx  # noqa: PLC0415

    with audit.http_client(httpx) as http:
        while not done.is_set():
            try:
                response = http.post("/api/echo", content=b'{"load": 1}')
                said = str(response.status_code)
                if response.status_code != 200:  # noqa: PLR2004
                    said += _source(response.headers, response.text)
            except httpx.HTTPError as error:
                said = type(error).__name__
            tally[said] += 1


def _source(headers: Mapping[str, str], text: str) -> str:
    """Who answered, in a few words: echod (a problem with its detail) or the proxy."""
    if headers.get("content-type") == "application/problem+json":
        try:
            return f" from echod ({json.loads(text)['detail']})"
        except (ValueError, KeyError, TypeError):
            return " from echod"
    return " from the proxy"
