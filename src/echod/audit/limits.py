"""Limit checks: bodies and heads over the limits, and a delay past the proxy's timeout.

Checks 10 to 12: each body over the limit gets its 413 (with ``Content-Length`` and
chunked), each head over it a 4xx, and a delay longer than the proxy's read timeout gets
the proxy's 504 while echod logs 499 (read from echod's log, ``--origin-log``).
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from echod.audit.report import FAIL, PASS, SKIP, WARN

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from echod.audit.auditor import Audit
    from echod.audit.report import Check

__all__ = ["TRIES", "body_limits", "delay_beyond_timeout", "header_limits"]

#: Tries of each kind of body, and of heads, over the limit.
TRIES = 10


def body_limits(audit: Audit, check: Check) -> Check:
    """10: ten bodies over the limit with Content-Length, ten chunked: each gets its 413."""
    import httpx  # noqa: PLC0415

    size = audit.options.body_bytes
    block = b"x" * 65536

    def chunks() -> Iterator[bytes]:
        left = size
        while left > 0:
            yield block[: min(left, len(block))]
            left -= len(block)

    outcomes: dict[str, dict[str, int]] = {"Content-Length": {}, "chunked": {}}
    for framing, tally in outcomes.items():
        for _ in range(TRIES):
            content: Any = b"x" * size if framing == "Content-Length" else chunks()
            with audit.http_client(httpx) as client:
                try:
                    response = client.post(
                        "/api/echo",
                        content=content,
                        headers={"X-Request-ID": audit.request_id("body")},
                    )
                    said = str(response.status_code)
                    if response.status_code == 200:  # noqa: PLR2004
                        return check.judge(
                            SKIP,
                            f"a body of {size} bytes is within every limit: pass --body-bytes",
                        )
                    if response.headers.get("content-type") == "application/problem+json":
                        said += " from echod"
                except httpx.HTTPError as error:
                    said = f"{type(error).__name__}"
            tally[said] = tally.get(said, 0) + 1
    check.sent.append(
        f"{TRIES} POST /api/echo of {size} bytes with Content-Length, {TRIES} chunked"
    )
    check.arrived += [
        f"{framing}: " + ", ".join(f"{count} x {said}" for said, count in sorted(tally.items()))
        for framing, tally in outcomes.items()
    ]
    bad = sum(
        count
        for tally in outcomes.values()
        for said, count in tally.items()
        if not said.startswith("413")
    )
    if bad:
        return check.judge(FAIL, f"{bad} of {2 * TRIES} tries got no 413")
    return check.judge(PASS, f"{2 * TRIES} of {2 * TRIES} tries got their 413")


def header_limits(audit: Audit, check: Check) -> Check:
    """11: ten heads over the limit: each gets a 4xx (431 or 400), never a reset or a 5xx."""
    size = audit.options.header_bytes
    outcomes: dict[str, int] = {}
    for _ in range(TRIES):
        _, answer = audit.raw("GET", "/api/inspect", [("X-Audit-Big", "h" * size)])
        if answer.status == 200:  # noqa: PLR2004
            return check.judge(
                SKIP, f"a header of {size} bytes is within every limit: pass --header-bytes"
            )
        said = answer.said() if answer.status is not None else f"no answer ({answer.error})"
        outcomes[said] = outcomes.get(said, 0) + 1
    check.sent.append(f"{TRIES} GET /api/inspect with a header of {size} bytes")
    check.arrived.append(", ".join(f"{count} x {said}" for said, count in sorted(outcomes.items())))
    bad = sum(count for said, count in outcomes.items() if said[:1] != "4")
    if bad:
        return check.judge(FAIL, f"{bad} of {TRIES} tries got no 4xx")
    return check.judge(PASS, f"{TRIES} of {TRIES} tries got a 4xx")


def delay_beyond_timeout(audit: Audit, check: Check) -> Check:  # noqa: PLR0911 - one verdict each
    """12: a delay longer than the proxy's timeout: it answers 504, echod logs 499."""
    delay = audit.options.delay_ms
    rid = audit.request_id("delay")
    check.sent.append(f"GET /api/inspect?delay_ms={delay}")
    _, answer = audit.raw(
        "GET", f"/api/inspect?delay_ms={delay}", rid=rid, timeout=delay / 1000 + 15
    )
    check.arrived.append(f"after {answer.took:.1f} s: {answer.said()}")
    if answer.status == 200:  # noqa: PLR2004
        return check.judge(
            SKIP,
            f"the proxy waited {delay} ms: its read timeout is longer; pass a longer "
            "--delay-ms (within echod's --max-delay)",
        )
    if answer.status == 400 and answer.header("x-request-id") == rid:  # noqa: PLR2004
        return check.judge(SKIP, f"echod refuses a delay of {delay} ms: over its --max-delay")
    if answer.status is None or answer.status < 500:  # noqa: PLR2004
        return check.judge(FAIL, f"the proxy answered {answer.said()} instead of a 5xx")
    # A proxy that waited too long says so with 504 (RFC 9110 section 15.6.5)
    timed_out = PASS if answer.status == 504 else WARN  # noqa: PLR2004
    if not audit.options.origin_logs:
        return check.judge(
            timed_out,
            f"the proxy gave up with {answer.status}; echod's log was not given (--origin-log)",
        )
    line = _logged(audit.options.origin_logs, rid, timeout=5.0)
    if line is None:
        return check.judge(
            WARN, f"the proxy gave up with {answer.status}; no line of {rid} in echod's log"
        )
    check.arrived.append(f"echod logged {line.get('status')}: {line.get('detail', '')}")
    if line.get("status") != 499:  # noqa: PLR2004
        return check.judge(
            FAIL, f"echod logged {line.get('status')} for a request the proxy gave up on"
        )
    if timed_out == WARN:
        return check.judge(WARN, f"the proxy answered {answer.status}, not 504; echod logged 499")
    return check.judge(PASS, f"the proxy answered {answer.status}, echod logged 499")


def _logged(logs: list[Path], rid: str, timeout: float) -> dict[str, Any] | None:
    """The log line of request ``rid`` in any of ``logs``, waited for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    pattern = re.compile(rf'"requestId":"{re.escape(rid)}"')
    while True:
        for log in logs:
            try:
                text = log.read_text(errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                if pattern.search(line) and '"status"' in line:
                    try:
                        found: dict[str, Any] = json.loads(line)
                    except ValueError:
                        continue
                    return found
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)
