"""Forwarding checks: what the proxy adds, removes and keeps of a request's headers and path.

Checks 1 to 5 and 15: the client's address and scheme, forged forwarding headers, Host,
hop-by-hop headers, the spellings of a path the proxy keeps inside, and the request id
and ``Cache-Control`` there and back. Each reads echod's ``/api/inspect`` report of what
arrived; the verdicts are :mod:`echod.audit.judge`'s.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from echod.audit import judge
from echod.audit.report import FAIL, PASS, WARN

if TYPE_CHECKING:
    from echod.audit.auditor import Audit
    from echod.audit.report import Check

__all__ = [
    "ENCODED_SLASH",
    "KEPT_INSIDE",
    "VARIANTS",
    "client_address_and_scheme",
    "forged_forwarding_headers",
    "hop_by_hop_headers",
    "host_preserved",
    "path_variants",
    "request_id_and_cache_control",
]

#: A path that a proxy in front should keep inside, and forms of it a rule may miss.
KEPT_INSIDE = "/metrics"
VARIANTS = (
    "/%6detrics",
    "/%6Detrics",
    "//metrics",
    "/./metrics",
    "/api/../metrics",
    "/metrics/",
    "/METRICS",
)
ENCODED_SLASH = "/api%2Finspect"


def client_address_and_scheme(audit: Audit, check: Check) -> Check:
    """1: the client's address added to X-Forwarded-For or Forwarded; its scheme forwarded."""
    _, answer, report = audit.inspect("address")
    check.sent.append(f"GET /api/inspect over {audit.target.scheme} from {answer.local}")
    if report is None:
        return check.judge(FAIL, f"no report from echod: {answer.said()}")
    seen = report["forwarded"]
    check.arrived += _forwarding(seen)
    addresses = [judge.address_of(item) for item in seen["xForwardedFor"]]
    addresses += [judge.address_of(element.get("for", "")) for element in seen["forwarded"]]
    protos = [
        *seen["xForwardedProto"],
        *(e["proto"] for e in seen["forwarded"] if "proto" in e),
    ]
    last_for = addresses[-1] if addresses else None
    scheme = audit.target.scheme
    if not addresses:
        return check.judge(FAIL, "no X-Forwarded-For or Forwarded for= reached echod")
    if scheme not in [proto.lower() for proto in protos]:
        return check.judge(FAIL, f"the scheme {scheme} was not forwarded (X-Forwarded-Proto)")
    if answer.local not in addresses:
        return check.judge(
            WARN,
            f"the addresses forwarded ({', '.join(addresses)}) are not this client's "
            f"({answer.local}): is there something between?",
        )
    if last_for != answer.local and addresses.count(answer.local) == 1:
        return check.judge(WARN, "this client's address is not the last one forwarded")
    return check.judge(PASS, f"{answer.local} and {scheme} forwarded")


def forged_forwarding_headers(audit: Audit, check: Check) -> Check:
    """2: forged Forwarded, X-Forwarded-* and X-Real-IP are not passed on unchanged."""
    headers = [(header, value) for _, header, value in judge.FORGED]
    _, answer, report = audit.inspect("forged", headers)
    check.sent += [f"{header}: {value}" for header, value in headers]
    if report is None:
        return check.judge(FAIL, f"no report from echod: {answer.said()}")
    result, detail, notes = judge.forged_headers(report["forwarded"])
    check.arrived += notes
    return check.judge(result, detail)


def host_preserved(audit: Audit, check: Check) -> Check:
    """3: the Host the client sent (with its port) is the Host echod sees."""
    _, answer, report = audit.inspect("host")
    check.sent.append(f"Host: {audit.target.authority}")
    if report is None:
        return check.judge(FAIL, f"no report from echod: {answer.said()}")
    hosts = judge.header_values(report, "host")
    arrived = hosts[0] if hosts else report.get("authority")
    check.arrived.append(f"Host: {arrived}" if hosts else f":authority: {arrived}")
    if arrived is None:
        return check.judge(FAIL, "no Host and no :authority reached echod")
    if arrived.lower() != audit.target.authority.lower():
        return check.judge(FAIL, f"echod saw Host {arrived}, not {audit.target.authority}")
    return check.judge(PASS, f"Host {arrived} preserved")


def hop_by_hop_headers(audit: Audit, check: Check) -> Check:
    """4: Keep-Alive, Proxy-Connection, TE and what Connection names never reach echod."""
    headers = list(judge.HOP_BY_HOP)
    _, answer, report = audit.inspect("hop", headers)
    check.sent += [f"{header}: {value}" for header, value in headers]
    if report is None:
        return check.judge(FAIL, f"no report from echod: {answer.said()}")
    check.arrived += _headers_of(report, ("keep-alive", "proxy-connection", "te"))
    listed = list(judge.CONNECTION_LISTED)
    rid, answer, listed_report = audit.inspect("listed", listed)
    check.sent.append(
        "then on its own: " + ", ".join(f"{header}: {value}" for header, value in listed)
    )
    refused = None
    if listed_report is None:
        by_echod = answer.header("x-request-id") == rid
        check.arrived.append(f"then: {answer.said()} from {'echod' if by_echod else 'the proxy'}")
        if not by_echod and answer.status is not None and 400 <= answer.status < 500:  # noqa: PLR2004
            refused = str(answer.status)
    else:
        check.arrived += [
            f"then: {line}" for line in _headers_of(listed_report, ("connection", "x-audit-hop"))
        ]
    return check.judge(*judge.hop_by_hop(report, listed_report, refused=refused))


def path_variants(audit: Audit, check: Check) -> Check:
    """5: a path the proxy keeps inside stays inside, whatever its spelling."""

    def reached(path: str) -> bool:
        rid = audit.request_id("path")
        _, answer = audit.raw("GET", path, rid=rid)
        # echod's answers carry the request id; a proxy's own refusal does not
        by_echod = answer.header("x-request-id") == rid
        check.arrived.append(
            f"{path}: {answer.said()}" + (" from echod" if by_echod else " from the proxy")
        )
        return by_echod and answer.status == 200  # noqa: PLR2004

    check.sent.append(f"GET {KEPT_INSIDE}, then {', '.join(VARIANTS)}, and {ENCODED_SLASH}")
    base = reached(KEPT_INSIDE)
    variants = {path: reached(path) for path in VARIANTS}
    slash = reached(ENCODED_SLASH)
    for dotted in ("/api/./inspect", "/api/x/../inspect"):
        rid = audit.request_id("dots")
        _, answer = audit.raw("GET", dotted, rid=rid)
        report = answer.report()
        check.arrived.append(
            f"{dotted}: {answer.said()}" + (f", echod saw {report['path']}" if report else "")
        )
    return check.judge(*judge.path_variants(variants, base_reached=base, slash_reached=slash))


def request_id_and_cache_control(audit: Audit, check: Check) -> Check:
    """15: the client's X-Request-ID reaches echod and comes back; so does no-store."""
    rid, answer, report = audit.inspect("kept")
    check.sent.append(f"X-Request-ID: {rid}")
    if report is None:
        return check.judge(FAIL, f"no report from echod: {answer.said()}")
    back, cache = answer.header("x-request-id"), answer.header("cache-control")
    check.arrived += [
        f"echod saw {report['requestId']}",
        f"X-Request-ID: {back}",
        f"Cache-Control: {cache}",
    ]
    if report["requestId"] != rid:
        return check.judge(FAIL, "the proxy replaced X-Request-ID on its way to echod")
    if back != rid:
        return check.judge(FAIL, "the answer's X-Request-ID is not the one echod sent")
    if cache is None or "no-store" not in cache:
        return check.judge(FAIL, "Cache-Control: no-store did not come back")
    return check.judge(PASS, "X-Request-ID there and back, Cache-Control: no-store kept")


def _forwarding(seen: dict[str, Any]) -> list[str]:
    """What echod's report says of the forwarding headers, one line each, the empty left out."""
    lines = []
    for field_name, header in (
        ("forwarded", "Forwarded"),
        ("xForwardedFor", "X-Forwarded-For"),
        ("xForwardedProto", "X-Forwarded-Proto"),
        ("xForwardedHost", "X-Forwarded-Host"),
        ("xRealIp", "X-Real-IP"),
    ):
        values = seen.get(field_name) or []
        if values:
            shown = [json.dumps(value) if isinstance(value, dict) else value for value in values]
            lines.append(f"{header}: {', '.join(shown)}")
    return lines or ["no forwarding header"]


def _headers_of(report: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    """The headers ``names`` as echod's report has them, one line each, or ``none of them``."""
    return [
        f"{name}: {', '.join(values)}"
        for name in names
        if (values := judge.header_values(report, name))
    ] or ["none of them"]
