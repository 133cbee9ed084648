"""Checks: the audit's checks, numbered and named, and the function that runs each.

Each check sends requests through the proxy to the echod behind it and compares what it
sent with what arrived: echod's ``/api/inspect`` report says what reached echod, the
answer what came back, and echod's log (``--origin-log``) what echod made of it. They are
grouped by what they look at: :mod:`echod.audit.forwarding` (headers and paths),
:mod:`echod.audit.streams` (connections, events, WebSockets, HTTP/2),
:mod:`echod.audit.limits`, :mod:`echod.audit.smuggling` and, with ``--include reload``,
:mod:`echod.audit.load`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from echod.audit import forwarding, limits, load, smuggling, streams

if TYPE_CHECKING:
    from collections.abc import Callable

    from echod.audit.auditor import Audit
    from echod.audit.report import Check

__all__ = ["CHECKS", "RELOAD_CHECKS", "Entry"]


class Entry(NamedTuple):
    """One check: its number, name and title, and what runs it."""

    number: int
    name: str
    title: str
    run: Callable[[Audit, Check], Check]


#: The checks, in the order they run and are reported.
CHECKS = (
    Entry(1, "client-address-and-scheme", "client address appended, and scheme forwarded",
          forwarding.client_address_and_scheme),
    Entry(2, "forged-forwarding-headers", "forged forwarding headers not passed on unchanged",
          forwarding.forged_forwarding_headers),
    Entry(3, "host-preserved", "Host preserved, port included", forwarding.host_preserved),
    Entry(4, "hop-by-hop-headers", "hop-by-hop and Connection-listed headers removed",
          forwarding.hop_by_hop_headers),
    Entry(5, "path-variants", "encoded and dotted path variants", forwarding.path_variants),
    Entry(6, "upstream-version-and-reuse", "HTTP version reaching echod, and connection reuse",
          streams.upstream_version_and_reuse),
    Entry(7, "sse-unbuffered", "Server-Sent Events not buffered", streams.sse_unbuffered),
    Entry(8, "websocket", "WebSocket round trips on both routes", streams.websocket),
    Entry(9, "websocket-same-origin", "a same-origin WebSocket", streams.websocket_same_origin),
    Entry(10, "body-limits", "every body over the limit gets its 413", limits.body_limits),
    Entry(11, "header-limits", "every head over the limit gets a clear 4xx",
          limits.header_limits),
    Entry(12, "delay-beyond-timeout", "a delay beyond the proxy's timeout",
          limits.delay_beyond_timeout),
    Entry(13, "smuggling", "smuggling probes: a victim always gets its own answer",
          smuggling.smuggling),
    Entry(14, "http2-end-to-end", "HTTP/2 from the client to echod", streams.http2_end_to_end),
    Entry(15, "request-id-and-cache-control", "X-Request-ID and Cache-Control kept",
          forwarding.request_id_and_cache_control),
)  # fmt: skip
#: The checks of ``--include reload``, which signal the echod processes behind the proxy.
RELOAD_CHECKS = (
    Entry(16, "reload-under-load", "a reload of every echod under load fails no request",
          load.reload_under_load),
    Entry(17, "drain-under-load", "a drain of one echod under load fails no request",
          load.drain_under_load),
)  # fmt: skip
