"""Stream checks: the connections the proxy keeps to echod, and what it carries on them.

Checks 6 to 9 and 14: the HTTP version that reaches echod and whether connections are
reused, Server-Sent Events unbuffered, WebSockets on both routes and from the site's own
origin (a refused handshake's status diagnosed), and HTTP/2 from end to end. httpx and
websockets are imported when these run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from echod.audit import judge
from echod.audit.report import FAIL, PASS, SKIP, WARN
from echod.audit.wire import request

if TYPE_CHECKING:
    from echod.audit.auditor import Audit
    from echod.audit.report import Check

__all__ = [
    "SSE_INTERVAL",
    "http2_end_to_end",
    "sse_unbuffered",
    "upstream_version_and_reuse",
    "websocket",
    "websocket_same_origin",
]

#: The event stream of check 7: three events, this many seconds apart.
SSE_INTERVAL = 0.4


def upstream_version_and_reuse(audit: Audit, check: Check) -> Check:
    """6: HTTP/1.1 or 2 reaches echod, over connections the proxy keeps and reuses."""
    import httpx  # noqa: PLC0415 - only the audit needs it

    seen: list[tuple[str, str, str]] = []
    with audit.http_client(httpx) as client:
        for _ in range(6):
            response = client.get(
                "/api/inspect", headers={"X-Request-ID": audit.request_id("reuse")}
            )
            if response.status_code != 200:  # noqa: PLR2004
                return check.judge(FAIL, f"GET /api/inspect answered {response.status_code}")
            report = response.json()
            seen.append((report["httpVersion"], report["client"], report["instance"]["id"]))
            audit.instances.add(report["instance"]["id"])
    check.sent.append("6 requests, one after the other, on one connection to the proxy")
    check.arrived += [
        f"HTTP/{version} from {client} to {instance[:8]}" for version, client, instance in seen
    ]
    return check.judge(*judge.connection_reuse(seen))


def sse_unbuffered(audit: Audit, check: Check) -> Check:
    """7: each event of a stream arrives on its own, the first within 300 ms."""
    query = f"count=3&interval_ms={int(SSE_INTERVAL * 1000)}"
    raw = request(
        "GET",
        f"/api/stream?{query}",
        audit.target.authority,
        [("Authorization", audit.authorization), ("Accept", "text/event-stream")],
    )
    check.sent.append(f"GET /api/stream?{query} (HTTP/1.1)")
    arrivals: list[float] = []
    try:
        with audit.target.connect() as conn:
            began = time.monotonic()
            conn.sendall(raw)
            received = b""
            head_said = ""
            while len(arrivals) < 3 and time.monotonic() - began < 10:  # noqa: PLR2004
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received += chunk
                if not head_said and b"\r\n\r\n" in received:
                    head_said = received.split(b"\r\n", 1)[0].decode("latin-1")
                now = time.monotonic() - began
                while len(arrivals) < received.count(b"\nid: ") + received.count(b"\r\n\r\nid: "):
                    arrivals.append(now)
    except OSError as error:
        return check.judge(FAIL, f"the stream failed: {error}")
    check.arrived.append(
        f"{head_said}; events at {', '.join(f'{t * 1000:.0f}' for t in arrivals)} ms"
    )
    if head_said.split(" ")[1:2] != ["200"]:
        return check.judge(FAIL, f"the stream answered {head_said or 'nothing'}")
    return check.judge(*judge.sse_pace(arrivals, SSE_INTERVAL))


def websocket(audit: Audit, check: Check) -> Check:
    """8: a message goes there and back on /api/echo and on /api/raw."""
    results = []
    for path, message, expected in (
        ("/api/echo", '{"audit": 1}', '{"audit":1,"echoed":true}'),
        ("/api/raw", "audit", "audit"),
    ):
        check.sent.append(f"WebSocket {path}: {message}")
        said, ok = _round_trip(audit, path, message, expected)
        check.arrived.append(f"{path}: {said}")
        results.append((path, ok, said))
    failed = [f"{path}: {said}" for path, ok, said in results if not ok]
    if failed:
        return check.judge(FAIL, "; ".join(failed))
    return check.judge(PASS, "both routes echo through the proxy")


def websocket_same_origin(audit: Audit, check: Check) -> Check:
    """9: a browser's handshake, with the site's own Origin, opens."""
    check.sent.append(f"WebSocket /api/raw with Origin: {audit.target.origin}")
    said, ok = _round_trip(
        audit, "/api/raw", "same-origin", "same-origin", origin=audit.target.origin
    )
    check.arrived.append(said)
    if ok:
        return check.judge(PASS, "the site's own origin may open a WebSocket")
    return check.judge(FAIL, said)


def http2_end_to_end(audit: Audit, check: Check) -> Check:  # noqa: PLR0911 - one verdict each
    """14: an HTTP/2 client reaches echod through the proxy, its authority intact."""
    if audit.target.scheme != "https":
        return check.judge(SKIP, "HTTP/2 is offered over TLS; the proxy's URL is http://")
    import httpx  # noqa: PLC0415

    check.sent.append("GET /api/inspect and POST /api/echo over h2 (ALPN)")
    try:
        with audit.http_client(httpx, http2=True) as client:
            response = client.get("/api/inspect", headers={"X-Request-ID": audit.request_id("h2")})
            echoed = client.post("/api/echo", content=b'{"h2": true}')
    except httpx.HTTPError as error:
        return check.judge(FAIL, f"HTTP/2 failed: {type(error).__name__}: {error}")
    if response.http_version != "HTTP/2":
        check.arrived.append(f"the proxy answered in {response.http_version}")
        return check.judge(WARN, "the proxy does not offer HTTP/2")
    report = response.json() if response.status_code == 200 else None  # noqa: PLR2004
    if report is None:
        return check.judge(FAIL, f"GET /api/inspect over h2 answered {response.status_code}")
    hosts = judge.header_values(report, "host")
    authority = hosts[0] if hosts else report.get("authority")
    check.arrived.append(
        f"echod saw HTTP/{report['httpVersion']}, authority {authority}; "
        f"echo {echoed.status_code} {echoed.text.strip()}"
    )
    if authority is None or authority.lower() != audit.target.authority.lower():
        return check.judge(
            FAIL, f"echod saw the authority {authority}, not {audit.target.authority}"
        )
    if echoed.status_code != 200 or echoed.json() != {"h2": True, "echoed": True}:  # noqa: PLR2004
        return check.judge(FAIL, f"the echo over h2 answered {echoed.status_code}")
    return check.judge(
        PASS, f"h2 to the proxy, HTTP/{report['httpVersion']} to echod, authority intact"
    )


def _round_trip(
    audit: Audit, path: str, message: str, expected: str, origin: str | None = None
) -> tuple[str, bool]:
    """Open a WebSocket, send ``message``; what happened, and whether it came back."""
    from websockets.exceptions import InvalidStatus, WebSocketException  # noqa: PLC0415
    from websockets.sync.client import connect  # noqa: PLC0415
    from websockets.typing import Origin  # noqa: PLC0415

    scheme = "wss" if audit.target.scheme == "https" else "ws"
    try:
        with connect(
            f"{scheme}://{audit.target.authority}{path}",
            additional_headers={"Authorization": audit.authorization},
            origin=None if origin is None else Origin(origin),
            ssl=audit.target.tls_context() if scheme == "wss" else None,
            open_timeout=audit.target.timeout,
            close_timeout=2,
        ) as socket:
            socket.send(message)
            reply = socket.recv(timeout=audit.target.timeout)
    except InvalidStatus as refused:
        status = refused.response.status_code
        return f"handshake answered {status}: {_diagnosis(status)}", False
    except (WebSocketException, OSError, TimeoutError) as error:
        return f"{type(error).__name__}: {error}", False
    if reply != expected:
        return f"sent {message!r}, got {reply!r}", False
    return f"101, then {reply!r}", True


def _diagnosis(status: int) -> str:
    """What a refused handshake's status says of the proxy."""
    return {
        400: "refused as malformed: the proxy may have sent it over HTTP/1.0 or HTTP/2",
        401: "the credentials did not reach echod",
        403: "echod saw an Origin of another host: the proxy changed Host "
        "(nginx: Host $http_host, or X-Forwarded-Host)",
        404: "no WebSocket on that path behind the proxy",
        405: "the proxy dropped Upgrade (echod before 426 answered 405)",
        426: "the proxy dropped Upgrade and Connection, which are hop-by-hop "
        "(nginx: proxy_http_version 1.1, proxy_set_header Upgrade and Connection)",
        502: "the proxy could not upgrade its connection to echod",
        503: "echod is draining, or holds its most WebSockets",
        504: "the proxy timed out waiting for the handshake",
    }.get(status, "unexpected")
