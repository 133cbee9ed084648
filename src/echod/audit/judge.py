"""Judge: the verdict of each check from its evidence, without a network.

Each function takes what was sent and what arrived (echod's ``/api/inspect`` reports, the
answers' statuses and times) and returns the result and why, so that the rules can be
tested on their own.
"""

from __future__ import annotations

import itertools
from typing import Any

from echod.audit.report import FAIL, PASS, SKIP, WARN

__all__ = [
    "CONNECTION_LISTED",
    "FORGED",
    "HOP_BY_HOP",
    "address_of",
    "connection_reuse",
    "forged_headers",
    "header_values",
    "hop_by_hop",
    "path_variants",
    "sse_pace",
]

#: Forged forwarding headers the audit sends (check 2): the field of the report's
#: ``forwarded`` that lists each, and the header and value sent.
FORGED = (
    ("forwarded", "Forwarded", "for=198.51.100.66;proto=gopher;host=forged.example"),
    ("xForwardedFor", "X-Forwarded-For", "198.51.100.66"),
    ("xForwardedProto", "X-Forwarded-Proto", "gopher"),
    ("xForwardedHost", "X-Forwarded-Host", "forged.example"),
    ("xRealIp", "X-Real-IP", "198.51.100.66"),
)
#: Hop-by-hop headers the audit sends (check 4): none may reach echod, except
#: ``TE: trailers``.
HOP_BY_HOP = (
    ("Connection", "keep-alive"),
    ("Keep-Alive", "timeout=5, max=100"),
    ("Proxy-Connection", "keep-alive"),
    ("TE", "trailers, deflate"),
)
#: Then, in a request of its own (check 4): a header that ``Connection`` names, which
#: must not reach echod either; a proxy may refuse the request instead.
CONNECTION_LISTED = (
    ("Connection", "keep-alive, X-Audit-Hop"),
    ("X-Audit-Hop", "1"),
)


def header_values(report: dict[str, Any], name: str) -> list[str]:
    """The values of header ``name`` in an ``/api/inspect`` report, in order."""
    return [value for key, value in report.get("headers", []) if key == name]


def address_of(item: str) -> str:
    """An address as forwarding headers write it, without quotes, brackets or port."""
    item = item.strip().strip('"')
    if item.startswith("["):
        return item[1:].partition("]")[0]
    if item.count(":") == 1:  # IPv4 with a port
        return item.partition(":")[0]
    return item


def forged_headers(forwarded: dict[str, Any]) -> tuple[str, str, list[str]]:
    """Check 2: which forged headers reached echod as they were sent.

    A header that arrived replaced, with the proxy's value appended, or not at all, was
    not passed on unchanged; one that arrived exactly as sent was.
    """
    unchanged, notes = [], []
    for field, header, value in FORGED:
        arrived = forwarded.get(field, [])
        if field == "forwarded":
            sent: list[Any] = [
                dict(pair.split("=", 1) for pair in value.split(";"))  # the one element sent
            ]
        else:
            sent = [value]
        if arrived == sent:
            unchanged.append(header)
            notes.append(f"{header}: passed on unchanged")
        elif not arrived:
            notes.append(f"{header}: removed")
        elif arrived[: len(sent)] == sent:
            notes.append(f"{header}: the proxy's value appended after the forged one")
        else:
            notes.append(f"{header}: replaced")
    if unchanged:
        return FAIL, f"passed on unchanged: {', '.join(unchanged)}", notes
    return PASS, "every forged header was replaced, appended to or removed", notes


def hop_by_hop(
    report: dict[str, Any], listed: dict[str, Any] | None, *, refused: str | None = None
) -> tuple[str, str]:
    """Check 4: no hop-by-hop header reached echod; ``TE`` only as ``trailers``.

    ``report`` is echod's report of the request with :data:`HOP_BY_HOP`, and ``listed``
    its report of the one with :data:`CONNECTION_LISTED`, or None when that one did not
    reach echod: ``refused`` then says how the proxy answered it itself (a 4xx), if it did.
    ``Keep-Alive``, ``Proxy-Connection`` and a ``TE`` other than ``trailers`` are
    hop-by-hop by name (RFC 9110 section 7.6.1); a header that ``Connection`` names must
    be removed too, or the request refused, and one passed on is a warning: nginx and
    HAProxy cannot be told to remove it.
    """
    names = {key for key, _ in report.get("headers", [])}
    leaked = [name for name in ("keep-alive", "proxy-connection") if name in names]
    te = header_values(report, "te")
    if te and any(value.strip().lower() != "trailers" for value in te):
        leaked.append(f"te: {', '.join(te)}")
    if leaked:
        return FAIL, f"hop-by-hop headers reached echod: {', '.join(leaked)}"
    removed = "no hop-by-hop header reached echod" + (f" (TE: {te[0]})" if te else "")
    if listed is None:
        if refused is None:
            return FAIL, (
                "the request whose Connection names X-Audit-Hop reached no echod, and the "
                "proxy did not refuse it with a 4xx"
            )
        return (
            PASS,
            f"{removed}; the proxy refused ({refused}) one whose Connection names X-Audit-Hop",
        )
    listed_names = {key for key, _ in listed.get("headers", [])}
    connection = " ".join(header_values(listed, "connection")).lower()
    if "x-audit-hop" in listed_names or "x-audit-hop" in connection:
        return WARN, (
            "X-Audit-Hop, which Connection named, reached echod: the proxy does not remove "
            "the headers Connection lists (RFC 9110 section 7.6.1)"
        )
    return PASS, f"{removed}, nor X-Audit-Hop, which Connection named"


def path_variants(
    variants: dict[str, bool], *, base_reached: bool, slash_reached: bool
) -> tuple[str, str]:
    """Check 5: variants of a path the proxy refuses may not reach echod either.

    ``base_reached`` says whether ``/metrics`` itself reached echod; ``variants`` whether
    each encoded, dotted or doubled form of it did; ``slash_reached`` whether an encoded
    slash (``/api%2Finspect``) did, which echod cannot tell from ``/`` (granian decodes the
    path before echod sees it).
    """
    bypass = [path for path, reached in variants.items() if reached]
    if not base_reached and bypass:
        return FAIL, f"the proxy refuses /metrics but passes on {', '.join(bypass)}"
    if base_reached:
        return WARN, "the proxy passes /metrics on: no path rule to test (keep it inside)"
    if slash_reached:
        return WARN, (
            "an encoded slash reaches echod, which sees it as /: a path rule of the proxy can "
            "be bypassed with it; refuse %2F at the proxy"
        )
    return PASS, "every variant of /metrics is refused, and so is an encoded slash"


def connection_reuse(seen: list[tuple[str, str, str]]) -> tuple[str, str]:
    """Check 6: the HTTP version reaching echod, and whether its connections are reused.

    ``seen`` holds, for each request, the version echod saw, the proxy's address as echod
    saw it, and the instance that answered.
    """
    versions = sorted({version for version, _, _ in seen})
    by_instance: dict[str, list[str]] = {}
    for _, client, instance in seen:
        by_instance.setdefault(instance, []).append(client)
    repeated = [clients for clients in by_instance.values() if len(clients) > 1]
    reused = any(len(set(clients)) < len(clients) for clients in repeated)
    said = f"HTTP/{', '.join(versions)} to echod"
    if "1.0" in versions:
        return WARN, f"{said}: no chunked streaming, and one connection per request"
    if not repeated:
        return WARN, f"{said}; no instance answered twice, so reuse could not be seen"
    if not reused:
        return WARN, f"{said}, a new connection for every request"
    return PASS, f"{said}, connections reused"


def sse_pace(arrivals: list[float], interval: float, first_within: float = 0.3) -> tuple[str, str]:
    """Check 7: the first event within ``first_within`` s, and the gaps between events kept.

    ``arrivals`` are the seconds from the request to each event; the stream sends one at
    once and the next ``interval`` s apart.
    """
    if not arrivals:
        return FAIL, "no event arrived"
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    times = ", ".join(f"{moment * 1000:.0f}" for moment in arrivals)
    if arrivals[0] > first_within:
        return (
            FAIL,
            f"buffered: the first event arrived after {arrivals[0] * 1000:.0f} ms ({times} ms)",
        )
    if any(gap < interval / 2 for gap in gaps):
        return FAIL, f"events arrived together, not {interval * 1000:.0f} ms apart ({times} ms)"
    return PASS, f"each event on its own ({times} ms)"


def skipped(detail: str) -> tuple[str, str]:
    """A check that could not be run, and why."""
    return SKIP, detail
