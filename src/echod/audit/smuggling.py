"""Smuggling check: requests framed two ways at once, each followed by victims.

Check 13 sends CL.TE, TE.CL, two ``Content-Length`` headers, an obfuscated
``Transfer-Encoding`` and two of them, each with a request hidden in its body, and
after each, victims on fresh connections: each victim must get its own answer, never the
hidden request's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from echod.audit.report import FAIL, PASS
from echod.audit.wire import CRLF

if TYPE_CHECKING:
    from collections.abc import Iterator

    from echod.audit.auditor import Audit
    from echod.audit.report import Check

__all__ = ["VICTIMS", "smuggling"]

#: Victims sent after each smuggling probe, each on a fresh connection.
VICTIMS = 4


def smuggling(audit: Audit, check: Check) -> Check:
    """13: CL.TE, TE.CL, two lengths and an obfuscated TE; each victim gets its own answer."""
    poisoned: list[str] = []
    for name, probe in _probes(audit):
        sent, answer = audit.raw("POST", "/api/inspect", probe[0], probe[1])
        check.sent.append(
            f"{name}: " + sent.split(b"\r\n\r\n", 1)[0].decode("latin-1").replace(CRLF, " | ")[:220]
        )
        victims = []
        for _ in range(VICTIMS):
            rid = audit.request_id("victim")
            _, got = audit.raw("GET", "/api/inspect", rid=rid, timeout=5)
            report = got.report()
            own = report is not None and report["requestId"] == rid and report["query"] == ""
            victims.append("own" if own else got.said())
        check.arrived.append(f"{name}: probe {answer.said()}; victims: {', '.join(victims)}")
        if any(victim != "own" for victim in victims):
            poisoned.append(name)
    if poisoned:
        return check.judge(
            FAIL, f"a victim got another request's answer after: {', '.join(poisoned)}"
        )
    return check.judge(PASS, "every victim got its own answer")


def _probes(audit: Audit) -> Iterator[tuple[str, tuple[list[tuple[str, str]], bytes]]]:
    """The smuggling probes: a name, the headers and the body of each."""
    prefix = (
        f"GET /api/inspect?smuggled={audit.run_id} HTTP/1.1{CRLF}"
        f"Host: {audit.target.authority}{CRLF}"
        f"Authorization: {audit.authorization}{CRLF}X-Audit-Prefix: "
    ).encode()
    cl_te = b"0\r\n\r\n" + prefix
    yield (
        "CL.TE",
        ([("Content-Length", str(len(cl_te))), ("Transfer-Encoding", "chunked")], cl_te),
    )
    inner = prefix + b"x\r\n\r\n"
    te_cl = b"%x\r\n" % len(inner) + inner + b"\r\n0\r\n\r\n"
    yield "TE.CL", ([("Content-Length", "4"), ("Transfer-Encoding", "chunked")], te_cl)
    yield (
        "two Content-Lengths",
        ([("Content-Length", "0"), ("Content-Length", str(len(prefix)))], prefix),
    )
    yield (
        "obfuscated TE",
        (
            [("Content-Length", str(len(cl_te))), ("Transfer-Encoding ", "chunked")],
            cl_te,
        ),
    )
    yield (
        "two TEs",
        (
            [
                ("Content-Length", str(len(cl_te))),
                ("Transfer-Encoding", "chunked"),
                ("Transfer-Encoding", "x"),
            ],
            cl_te,
        ),
    )
