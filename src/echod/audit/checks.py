"""Checks: what the audit sends through the proxy, and what it looks at of what arrived.

Each check sends requests through the proxy to the echod behind it and compares what it
sent with what arrived: echod's ``/api/inspect`` report says what reached echod, the
answer what came back, and echod's log (``--origin-log``) what echod made of it. The
verdicts are :mod:`echod.audit.judge`'s. httpx (with h2) and websockets are imported by
the checks that need them, so that echod's serving processes never load them.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from echod.audit import judge
from echod.audit.report import FAIL, PASS, SKIP, WARN, Check
from echod.audit.wire import CRLF, Answer, exchange, request
from echod.procfs import alive

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

    from echod.audit.wire import Target

__all__ = ["CHECKS", "RELOAD_CHECKS", "Audit", "Options"]

#: Each check: its number, name and title, in the order they run and are reported.
CHECKS = (
    (1, "client-address-and-scheme", "client address appended, and scheme forwarded"),
    (2, "forged-forwarding-headers", "forged forwarding headers not passed on unchanged"),
    (3, "host-preserved", "Host preserved, port included"),
    (4, "hop-by-hop-headers", "hop-by-hop and Connection-listed headers removed"),
    (5, "path-variants", "encoded and dotted path variants"),
    (6, "upstream-version-and-reuse", "HTTP version reaching echod, and connection reuse"),
    (7, "sse-unbuffered", "Server-Sent Events not buffered"),
    (8, "websocket", "WebSocket round trips on both routes"),
    (9, "websocket-same-origin", "a same-origin WebSocket"),
    (10, "body-limits", "every body over the limit gets its 413"),
    (11, "header-limits", "every head over the limit gets a clear 4xx"),
    (12, "delay-beyond-timeout", "a delay beyond the proxy's timeout"),
    (13, "smuggling", "smuggling probes: a victim always gets its own answer"),
    (14, "http2-end-to-end", "HTTP/2 from the client to echod"),
    (15, "request-id-and-cache-control", "X-Request-ID and Cache-Control kept"),
)
#: The checks of ``--include reload``, which signal the echod processes behind the proxy.
RELOAD_CHECKS = (
    (16, "reload-under-load", "a reload of every echod under load fails no request"),
    (17, "drain-under-load", "a drain of one echod under load fails no request"),
)
#: Tries of each kind of body, and of heads, over the limit.
TRIES = 10
#: The event stream of check 7: three events, this many seconds apart.
SSE_INTERVAL = 0.4
#: Victims sent after each smuggling probe, each on a fresh connection.
VICTIMS = 4
#: Seconds the load of ``--include reload`` runs around each signal.
SETTLE = 2.0
#: Clients sending the load of ``--include reload``.
LOAD_CLIENTS = 4
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


@dataclass
class Options:
    """What the command line asks of the audit."""

    user: str = "remarkablebob:2rFtex"
    #: Bytes of the bodies of check 10; they must be over the limits in front of echod.
    body_bytes: int = 2 * 1024 * 1024
    #: Milliseconds of the delay of check 12: longer than the proxy's read timeout.
    delay_ms: int = 10_000
    #: Bytes of the header of check 11: over the limits in front of echod.
    header_bytes: int = 64 * 1024
    #: echod's log files, one per echod behind the proxy (check 12 finds its 499 there).
    origin_logs: list[Path] = field(default_factory=list)
    #: The pids of the echod processes behind the proxy (``--include reload``).
    origin_pids: list[int] = field(default_factory=list)
    #: Which checks to run, by name; empty: all.
    only: set[str] = field(default_factory=set)
    reload: bool = False


class Audit:
    """The checks through one proxy, with what they share: the target and the credentials."""

    def __init__(self, target: Target, options: Options) -> None:
        """Audit ``target`` as ``options`` say."""
        self.target = target
        self.options = options
        self.authorization = "Basic " + base64.b64encode(options.user.encode()).decode()
        self.instances: set[str] = set()
        self._run = uuid.uuid4().hex[:8]
        self._count = 0

    # What every check uses

    def request_id(self, what: str) -> str:
        """A request id of this run, which names what it is for."""
        self._count += 1
        return f"audit-{self._run}-{self._count}-{what}"

    def raw(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        *,
        rid: str | None = None,
        authority: str | None = None,
        timeout: float | None = None,
    ) -> tuple[bytes, Answer]:
        """Send one request on a new connection, with the credentials; the bytes and the answer."""
        given = [("Authorization", self.authorization)]
        if rid is not None:
            given.append(("X-Request-ID", rid))
        given += headers or []
        sent = request(method, path, authority or self.target.authority, given, body)
        answer = exchange(self.target, sent, method=method, timeout=timeout)
        report = answer.report()
        if report is not None:
            self.instances.add(str(report.get("instance", {}).get("id", "")))
        return sent, answer

    def inspect(
        self, what: str, headers: list[tuple[str, str]] | None = None, *, path: str = "/api/inspect"
    ) -> tuple[str, Answer, dict[str, Any] | None]:
        """``GET /api/inspect`` with ``headers``: the request id, the answer and echod's report."""
        rid = self.request_id(what)
        _, answer = self.raw("GET", path, headers, rid=rid)
        return rid, answer, answer.report()

    def reaches(self) -> str | None:
        """Why the proxy does not reach an echod, or None when it does."""
        rid, answer, report = self.inspect("reach")
        if report is None:
            return f"GET /api/inspect through {self.target.url} answered {answer.said()}"
        if report.get("requestId") != rid:
            other = report.get("requestId")
            return f"GET /api/inspect answered the report of another request ({other})"
        return None

    # The checks

    def client_address_and_scheme(self, check: Check) -> Check:
        """1: the client's address added to X-Forwarded-For or Forwarded; its scheme forwarded."""
        _, answer, report = self.inspect("address")
        check.sent.append(f"GET /api/inspect over {self.target.scheme} from {answer.local}")
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
        scheme = self.target.scheme
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

    def forged_forwarding_headers(self, check: Check) -> Check:
        """2: forged Forwarded, X-Forwarded-* and X-Real-IP are not passed on unchanged."""
        headers = [(header, value) for _, header, value in judge.FORGED]
        _, answer, report = self.inspect("forged", headers)
        check.sent += [f"{header}: {value}" for header, value in headers]
        if report is None:
            return check.judge(FAIL, f"no report from echod: {answer.said()}")
        result, detail, notes = judge.forged_headers(report["forwarded"])
        check.arrived += notes
        return check.judge(result, detail)

    def host_preserved(self, check: Check) -> Check:
        """3: the Host the client sent (with its port) is the Host echod sees."""
        _, answer, report = self.inspect("host")
        check.sent.append(f"Host: {self.target.authority}")
        if report is None:
            return check.judge(FAIL, f"no report from echod: {answer.said()}")
        hosts = judge.header_values(report, "host")
        arrived = hosts[0] if hosts else report.get("authority")
        check.arrived.append(f"Host: {arrived}" if hosts else f":authority: {arrived}")
        if arrived is None:
            return check.judge(FAIL, "no Host and no :authority reached echod")
        if arrived.lower() != self.target.authority.lower():
            return check.judge(FAIL, f"echod saw Host {arrived}, not {self.target.authority}")
        return check.judge(PASS, f"Host {arrived} preserved")

    def hop_by_hop_headers(self, check: Check) -> Check:
        """4: Keep-Alive, Proxy-Connection, TE and what Connection names never reach echod."""
        headers = list(judge.HOP_BY_HOP)
        _, answer, report = self.inspect("hop", headers)
        check.sent += [f"{header}: {value}" for header, value in headers]
        if report is None:
            return check.judge(FAIL, f"no report from echod: {answer.said()}")
        check.arrived += _headers_of(report, ("keep-alive", "proxy-connection", "te"))
        listed = list(judge.CONNECTION_LISTED)
        rid, answer, listed_report = self.inspect("listed", listed)
        check.sent.append(
            "then on its own: " + ", ".join(f"{header}: {value}" for header, value in listed)
        )
        refused = None
        if listed_report is None:
            by_echod = answer.header("x-request-id") == rid
            check.arrived.append(
                f"then: {answer.said()} from {'echod' if by_echod else 'the proxy'}"
            )
            if not by_echod and answer.status is not None and 400 <= answer.status < 500:  # noqa: PLR2004
                refused = str(answer.status)
        else:
            check.arrived += [
                f"then: {line}"
                for line in _headers_of(listed_report, ("connection", "x-audit-hop"))
            ]
        return check.judge(*judge.hop_by_hop(report, listed_report, refused=refused))

    def path_variants(self, check: Check) -> Check:
        """5: a path the proxy keeps inside stays inside, whatever its spelling."""

        def reached(path: str) -> bool:
            rid = self.request_id("path")
            _, answer = self.raw("GET", path, rid=rid)
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
            rid = self.request_id("dots")
            _, answer = self.raw("GET", dotted, rid=rid)
            report = answer.report()
            check.arrived.append(
                f"{dotted}: {answer.said()}" + (f", echod saw {report['path']}" if report else "")
            )
        return check.judge(*judge.path_variants(variants, base_reached=base, slash_reached=slash))

    def upstream_version_and_reuse(self, check: Check) -> Check:
        """6: HTTP/1.1 or 2 reaches echod, over connections the proxy keeps and reuses."""
        import httpx  # noqa: PLC0415 - only the audit needs it

        seen: list[tuple[str, str, str]] = []
        with self._client(httpx) as client:
            for _ in range(6):
                response = client.get(
                    "/api/inspect", headers={"X-Request-ID": self.request_id("reuse")}
                )
                if response.status_code != 200:  # noqa: PLR2004
                    return check.judge(FAIL, f"GET /api/inspect answered {response.status_code}")
                report = response.json()
                seen.append((report["httpVersion"], report["client"], report["instance"]["id"]))
                self.instances.add(report["instance"]["id"])
        check.sent.append("6 requests, one after the other, on one connection to the proxy")
        check.arrived += [
            f"HTTP/{version} from {client} to {instance[:8]}" for version, client, instance in seen
        ]
        return check.judge(*judge.connection_reuse(seen))

    def sse_unbuffered(self, check: Check) -> Check:
        """7: each event of a stream arrives on its own, the first within 300 ms."""
        query = f"count=3&interval_ms={int(SSE_INTERVAL * 1000)}"
        raw = request(
            "GET",
            f"/api/stream?{query}",
            self.target.authority,
            [("Authorization", self.authorization), ("Accept", "text/event-stream")],
        )
        check.sent.append(f"GET /api/stream?{query} (HTTP/1.1)")
        arrivals: list[float] = []
        try:
            with self.target.connect() as conn:
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
                    while len(arrivals) < received.count(b"\nid: ") + received.count(
                        b"\r\n\r\nid: "
                    ):
                        arrivals.append(now)
        except OSError as error:
            return check.judge(FAIL, f"the stream failed: {error}")
        check.arrived.append(
            f"{head_said}; events at {', '.join(f'{t * 1000:.0f}' for t in arrivals)} ms"
        )
        if head_said.split(" ")[1:2] != ["200"]:
            return check.judge(FAIL, f"the stream answered {head_said or 'nothing'}")
        return check.judge(*judge.sse_pace(arrivals, SSE_INTERVAL))

    def websocket(self, check: Check) -> Check:
        """8: a message goes there and back on /api/echo and on /api/raw."""
        results = []
        for path, message, expected in (
            ("/api/echo", '{"audit": 1}', '{"audit":1,"echoed":true}'),
            ("/api/raw", "audit", "audit"),
        ):
            check.sent.append(f"WebSocket {path}: {message}")
            said, ok = self._round_trip(path, message, expected)
            check.arrived.append(f"{path}: {said}")
            results.append((path, ok, said))
        failed = [f"{path}: {said}" for path, ok, said in results if not ok]
        if failed:
            return check.judge(FAIL, "; ".join(failed))
        return check.judge(PASS, "both routes echo through the proxy")

    def websocket_same_origin(self, check: Check) -> Check:
        """9: a browser's handshake, with the site's own Origin, opens."""
        check.sent.append(f"WebSocket /api/raw with Origin: {self.target.origin}")
        said, ok = self._round_trip(
            "/api/raw", "same-origin", "same-origin", origin=self.target.origin
        )
        check.arrived.append(said)
        if ok:
            return check.judge(PASS, "the site's own origin may open a WebSocket")
        return check.judge(FAIL, said)

    def body_limits(self, check: Check) -> Check:
        """10: ten bodies over the limit with Content-Length, ten chunked: each gets its 413."""
        import httpx  # noqa: PLC0415

        size = self.options.body_bytes
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
                with self._client(httpx) as client:
                    try:
                        response = client.post(
                            "/api/echo",
                            content=content,
                            headers={"X-Request-ID": self.request_id("body")},
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

    def header_limits(self, check: Check) -> Check:
        """11: ten heads over the limit: each gets a 4xx (431 or 400), never a reset or a 5xx."""
        size = self.options.header_bytes
        outcomes: dict[str, int] = {}
        for _ in range(TRIES):
            _, answer = self.raw("GET", "/api/inspect", [("X-Audit-Big", "h" * size)])
            if answer.status == 200:  # noqa: PLR2004
                return check.judge(
                    SKIP, f"a header of {size} bytes is within every limit: pass --header-bytes"
                )
            said = answer.said() if answer.status is not None else f"no answer ({answer.error})"
            outcomes[said] = outcomes.get(said, 0) + 1
        check.sent.append(f"{TRIES} GET /api/inspect with a header of {size} bytes")
        check.arrived.append(
            ", ".join(f"{count} x {said}" for said, count in sorted(outcomes.items()))
        )
        bad = sum(count for said, count in outcomes.items() if said[:1] != "4")
        if bad:
            return check.judge(FAIL, f"{bad} of {TRIES} tries got no 4xx")
        return check.judge(PASS, f"{TRIES} of {TRIES} tries got a 4xx")

    def delay_beyond_timeout(self, check: Check) -> Check:  # noqa: PLR0911 - one verdict each
        """12: a delay longer than the proxy's timeout: it answers 504, echod logs 499."""
        delay = self.options.delay_ms
        rid = self.request_id("delay")
        check.sent.append(f"GET /api/inspect?delay_ms={delay}")
        _, answer = self.raw(
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
        if not self.options.origin_logs:
            return check.judge(
                timed_out,
                f"the proxy gave up with {answer.status}; echod's log was not given (--origin-log)",
            )
        line = _logged(self.options.origin_logs, rid, timeout=5.0)
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
            return check.judge(
                WARN, f"the proxy answered {answer.status}, not 504; echod logged 499"
            )
        return check.judge(PASS, f"the proxy answered {answer.status}, echod logged 499")

    def smuggling(self, check: Check) -> Check:
        """13: CL.TE, TE.CL, two lengths and an obfuscated TE; each victim gets its own answer."""
        poisoned: list[str] = []
        for name, probe in self._probes():
            sent, answer = self.raw("POST", "/api/inspect", probe[0], probe[1])
            check.sent.append(
                f"{name}: "
                + sent.split(b"\r\n\r\n", 1)[0].decode("latin-1").replace(CRLF, " | ")[:220]
            )
            victims = []
            for _ in range(VICTIMS):
                rid = self.request_id("victim")
                _, got = self.raw("GET", "/api/inspect", rid=rid, timeout=5)
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

    def http2_end_to_end(self, check: Check) -> Check:  # noqa: PLR0911 - one verdict each
        """14: an HTTP/2 client reaches echod through the proxy, its authority intact."""
        if self.target.scheme != "https":
            return check.judge(SKIP, "HTTP/2 is offered over TLS; the proxy's URL is http://")
        import httpx  # noqa: PLC0415

        check.sent.append("GET /api/inspect and POST /api/echo over h2 (ALPN)")
        try:
            with self._client(httpx, http2=True) as client:
                response = client.get(
                    "/api/inspect", headers={"X-Request-ID": self.request_id("h2")}
                )
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
        if authority is None or authority.lower() != self.target.authority.lower():
            return check.judge(
                FAIL, f"echod saw the authority {authority}, not {self.target.authority}"
            )
        if echoed.status_code != 200 or echoed.json() != {"h2": True, "echoed": True}:  # noqa: PLR2004
            return check.judge(FAIL, f"the echo over h2 answered {echoed.status_code}")
        return check.judge(
            PASS, f"h2 to the proxy, HTTP/{report['httpVersion']} to echod, authority intact"
        )

    def request_id_and_cache_control(self, check: Check) -> Check:
        """15: the client's X-Request-ID reaches echod and comes back; so does no-store."""
        rid, answer, report = self.inspect("kept")
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

    def reload_under_load(self, check: Check) -> Check:
        """16: SIGHUP to every echod, one after the other, while clients send requests."""
        pids = self.options.origin_pids
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

        return self._under_load(check, act, "reload")

    def drain_under_load(self, check: Check) -> Check:
        """17: SIGTERM to the last echod while clients send requests; it drains, none fails."""
        pids = self.options.origin_pids
        if len(pids) < 2:  # noqa: PLR2004
            return check.judge(
                SKIP, "a drain needs two echod behind the proxy (--origin-pid twice)"
            )
        pid = pids[-1]
        check.sent.append(f"{LOAD_CLIENTS} clients sending POST /api/echo; SIGTERM to {pid}")

        def act() -> None:
            time.sleep(SETTLE)
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(SETTLE)

        return self._under_load(check, act, "drain")

    # Helpers

    def _client(self, httpx: Any, *, http2: bool = False) -> Any:  # noqa: ANN401 - httpx, imported late
        context = self.target.tls_context(("h2", "http/1.1") if http2 else ("http/1.1",))
        return httpx.Client(
            base_url=self.target.url,
            headers={"Authorization": self.authorization},
            verify=context,
            http2=http2,
            timeout=self.target.timeout,
        )

    def _round_trip(
        self, path: str, message: str, expected: str, origin: str | None = None
    ) -> tuple[str, bool]:
        """Open a WebSocket, send ``message``; what happened, and whether it came back."""
        from websockets.exceptions import InvalidStatus, WebSocketException  # noqa: PLC0415
        from websockets.sync.client import connect  # noqa: PLC0415
        from websockets.typing import Origin  # noqa: PLC0415

        scheme = "wss" if self.target.scheme == "https" else "ws"
        try:
            with connect(
                f"{scheme}://{self.target.authority}{path}",
                additional_headers={"Authorization": self.authorization},
                origin=None if origin is None else Origin(origin),
                ssl=self.target.tls_context() if scheme == "wss" else None,
                open_timeout=self.target.timeout,
                close_timeout=2,
            ) as socket:
                socket.send(message)
                reply = socket.recv(timeout=self.target.timeout)
        except InvalidStatus as refused:
            status = refused.response.status_code
            return f"handshake answered {status}: {_diagnosis(status)}", False
        except (WebSocketException, OSError, TimeoutError) as error:
            return f"{type(error).__name__}: {error}", False
        if reply != expected:
            return f"sent {message!r}, got {reply!r}", False
        return f"101, then {reply!r}", True

    def _probes(self) -> Iterator[tuple[str, tuple[list[tuple[str, str]], bytes]]]:
        """The smuggling probes: a name, the headers and the body of each."""
        prefix = (
            f"GET /api/inspect?smuggled={self._run} HTTP/1.1{CRLF}"
            f"Host: {self.target.authority}{CRLF}"
            f"Authorization: {self.authorization}{CRLF}X-Audit-Prefix: "
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

    def _under_load(self, check: Check, act: Callable[[], None], what: str) -> Check:
        """Send requests from :data:`LOAD_CLIENTS` clients while ``act`` runs; none may fail."""
        done = threading.Event()
        tallies: list[Counter[str]] = [Counter() for _ in range(LOAD_CLIENTS)]
        threads = [
            threading.Thread(target=self._load, args=(done, tally), daemon=True)
            for tally in tallies
        ]
        for thread in threads:
            thread.start()
        try:
            act()
        finally:
            done.set()
            for thread in threads:
                thread.join(timeout=self.target.timeout + 5)
        total: Counter[str] = sum(tallies, Counter())
        check.arrived.append(
            ", ".join(f"{count} x {said}" for said, count in sorted(total.items()))
        )
        answered = total["200"]
        failed = total.total() - answered
        if not answered:
            return check.judge(FAIL, "no request was answered")
        if failed:
            return check.judge(
                FAIL, f"{failed} of {failed + answered} requests failed during the {what}"
            )
        return check.judge(PASS, f"{answered} requests, none failed during the {what}")

    def _load(self, done: threading.Event, tally: Counter[str]) -> None:
        """One client of the load: echoes on a kept-alive connection until ``done``."""
        import httpx  # noqa: PLC0415

        with self._client(httpx) as http:
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
