"""Inspection: ``/api/inspect`` reports the request as it arrived, and answers as asked.

The report says what a proxy in front did to a request: its method, path, query,
version, scheme, authority (HTTP/2's ``:authority``), peer, headers (with credentials
redacted), what ``Forwarded``, the ``X-Forwarded-*`` headers and ``X-Real-IP`` each claim
(reported, never trusted), its body as it arrived and as decoded, which echod instance
answered, and what a bearer token carries (:func:`token_report`). The request may also
shape the answer: a status (200 to 599) or statuses picked by weight, a delay (up to
``--max-delay``) or a range to pick one in (:mod:`echod.http.faults`), headers and a body
of its own (:mod:`echod.http.shaping`), and a coding (:mod:`echod.http.negotiation`).
Delays wait without blocking the process, within the process's places for long requests
(:meth:`echod.http.drain.Drain.holding`), and end at once when echod drains. A delay
whose client leaves (or whose proxy gives up on it, with its own 504) ends then, and is
logged and counted as 499. A request with ``key=`` or ``rate=`` is a scenario
(:mod:`echod.http.scenarios`): the state says whether it fails, passes or is refused
(429) before it is answered.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import time
from base64 import b64decode
from typing import TYPE_CHECKING, Any

import msgspec

from echod.http.answers import CLIENT_GONE, HTTP_VERSIONS, NO_STORE, send, stamp
from echod.http.bearer import NO_KEYS, bearer_token, peek
from echod.http.bodies import Decoded
from echod.http.controls import Bounds, Controls, delay_ms
from echod.http.faults import faults
from echod.http.forwarded import forwarded
from echod.http.negotiation import VARY, encode_whole, forced
from echod.http.problems import InvalidToken
from echod.http.scenarios import asked
from echod.http.shaping import DEFAULT_TYPE, Shape, shape
from echod.routes import INSPECT
from echod.telemetry.metric_layout import ENCODED

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from granian.rsgi import Headers, HTTPProtocol, Scope  # type: ignore[attr-defined]

    from echod.http.bearer import Tokens
    from echod.http.drain import Drain
    from echod.http.scenarios import Asked, Scenarios
    from echod.telemetry.records import RequestRecord

__all__ = ["TEXT_LIMIT", "Inspector", "redacted", "token_report"]

#: The longest body shown as text in the report, in bytes; a longer one shows null.
TEXT_LIMIT = 64 * 1024
#: What a forced status may be.
STATUS = Bounds(200, 599)
_NO_BODY = frozenset({204, 304})
_REDACTED = "<redacted>"
_CREDENTIALS = frozenset({"authorization", "proxy-authorization"})
_JSON = "application/json"
_PLAIN = Shape()
#: What a failing attempt is answered by default (``fail=``, ``fail_every=``).
FAIL_STATUS = 503
# Decimal: the numbers of a token's claims, shown as numbers (echo's way of reading them).
_encode = msgspec.json.Encoder(decimal_format="number").encode


def redacted(name: str, value: str) -> str:
    """A header's value as the report shows it: credentials and cookies redacted.

    ``Basic`` credentials keep their user: ``Basic alice:<redacted>``; other schemes keep
    their name: ``Bearer <redacted>``. A value of one word cannot be told from a bare
    token, so it is redacted whole.
    """
    if name == "cookie":
        return _REDACTED
    if name not in _CREDENTIALS:
        return value
    parts = value.split(None, 1)
    if len(parts) != 2:  # noqa: PLR2004 - a scheme and its credentials
        return _REDACTED
    scheme, token = parts
    if scheme.lower() == "basic":
        try:
            user = b64decode(token.strip(), validate=True).split(b":", 1)[0].decode()
        except (binascii.Error, ValueError):
            return f"{scheme} {_REDACTED}"
        return f"{scheme} {user}:{_REDACTED}"
    return f"{scheme} {_REDACTED}"


def token_report(headers: Headers, tokens: Tokens | None) -> dict[str, Any] | None:
    """What the first bearer token of the request carries, or None without one.

    The token is looked for in ``Authorization``, then in ``Proxy-Authorization`` (where
    a client that signs in with Basic can still show one), in every value of each. One
    that has the shape of a JWT (:func:`echod.http.bearer.peek`) is reported with its
    header and claims, whether its signature verifies or not, and never its signature:
    ``verified`` says whether the key set accepts it, and ``reason`` why not.
    """
    for name in _CREDENTIALS_ORDER:
        for value in headers.get_all(name) or []:  # type: ignore[attr-defined]
            token = bearer_token(value)
            if not token:
                continue
            try:
                peeked = peek(token)
            except InvalidToken:
                continue
            reason: str | None = NO_KEYS
            if tokens is not None:
                try:
                    tokens.verify(value)
                    reason = None
                except InvalidToken as refused:
                    reason = refused.detail
            return {
                "header": peeked.header,
                "claims": peeked.claims,
                "verified": reason is None,
                "reason": reason,
            }
    return None


_CREDENTIALS_ORDER = ("authorization", "proxy-authorization")


class Inspector:
    """The handler of ``/api/inspect`` (see :data:`echod.http.app.Handler`)."""

    def __init__(
        self,
        *,
        instance: dict[str, str],
        max_delay: float,
        drain: Drain,
        count: Callable[[int, str], None] = lambda _d, _c: None,
        tokens: Tokens | None = None,
        scenarios: Scenarios | None = None,
    ) -> None:
        """Report ``instance``; honour delays up to ``max_delay`` seconds.

        ``count`` is told of each answer's coding
        (:meth:`echod.telemetry.metric_layout.Recorder.coding`); ``tokens`` verifies the
        bearer tokens the report shows (without it, none is). ``scenarios`` asks the state
        for the requests with ``key=`` or ``rate=``.
        """
        self._tokens = tokens
        self._instance = instance
        self._delay = delay_ms(max_delay)
        self._drain = drain
        self._count = count
        self._scenarios = scenarios

    def __call__(
        self, scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes
    ) -> Coroutine[Any, Any, None] | None:
        """Answer as the request asks: a status, headers, a body and a coding, after a delay.

        Everything is checked before the delay, so a bad control is a 400 at once.
        """
        controls = Controls(scope)
        scenario = asked(controls)
        default = FAIL_STATUS if scenario is not None and scenario.rule else 200
        picked = faults(controls, STATUS, self._delay, default)
        shaped = shape(controls)
        shaped.check(picked.possible)
        force = forced(controls)
        status, wait, chosen = picked.choose()
        if scenario is not None:
            return self._scenario(
                scenario,
                scope,
                proto,
                record,
                (body, controls.args),
                (status, wait, chosen, shaped, force),
            )
        return self._respond(
            scope, proto, record, body, controls.args, (status, wait, chosen, shaped, force)
        )

    async def _scenario(
        self,
        scenario: Asked,
        scope: Scope,
        proto: HTTPProtocol,
        record: RequestRecord,
        request: tuple[bytes, dict[str, list[str]]],
        answer: tuple[int, int, tuple[str, str] | None, Shape, str | None],
    ) -> None:
        """Ask the state, then answer: as asked when failing, or with no rule; else plainly.

        ``request`` is the body and the query's arguments, for the report.
        """
        if self._scenarios is None:
            raise RuntimeError("an Inspector without scenarios got one")
        status, _, _, _, force = answer
        pass_status = 200 if scenario.rule else status
        ask = self._scenarios.ask(scenario, scope, record, status, pass_status)
        outcome, added = await self._scenarios.decide(scenario, ask)
        if scenario.rule and not outcome.failed:  # a passing attempt: the plain report
            answer = (200, 0, None, _PLAIN, force)
        body, args = request
        waiting = self._respond(scope, proto, record, body, args, answer, added)
        if waiting is not None:
            await waiting

    def _respond(
        self,
        scope: Scope,
        proto: HTTPProtocol,
        record: RequestRecord,
        body: bytes,
        args: dict[str, list[str]],
        answer: tuple[int, int, tuple[str, str] | None, Shape, str | None],
        added: list[tuple[str, str]] | None = None,
    ) -> Coroutine[Any, Any, None] | None:
        """Answer ``status`` after ``wait`` ms, shaped as asked, with the ``added`` headers."""
        status, wait, chosen, shaped, force = answer
        headers = scope.headers
        if shaped.body is not None:
            content, content_type = shaped.body, shaped.content_type or DEFAULT_TYPE
        else:
            report = self._report(scope, headers, args, body, record.request_id)
            content, content_type = _encode(report) + b"\n", shaped.content_type or _JSON
        response = [] if status in _NO_BODY else [("content-type", content_type)]
        if not shaped.sets("cache-control"):
            response.append(NO_STORE)
        if status not in _NO_BODY and not shaped.sets("content-encoding"):
            response.append(VARY)
            coding, content = encode_whole(headers.get("accept-encoding"), content, force)
            if coding is not None:
                response.append(("content-encoding", coding))
                self._count(ENCODED, coding)
        if chosen is not None:
            response.append(chosen)
        if added:
            response += added
        response += shaped.headers_for(status, INSPECT.allow)
        if wait:
            return self._after(wait, proto, record, status, response, content)
        self._answer(proto, record, status, response, content)
        return None

    async def _after(
        self,
        wait: int,
        proto: HTTPProtocol,
        record: RequestRecord,
        status: int,
        headers: list[tuple[str, str]],
        content: bytes,
    ) -> None:
        with self._drain.holding():
            gone = await self._wait(wait / 1000, proto, record.server)
        if gone:
            record.status = CLIENT_GONE
            record.detail = "the client left before the delayed answer"
            record.duration_ms = (time.perf_counter() - record.started) * 1000.0
            return
        self._answer(proto, record, status, headers, content)

    async def _wait(self, seconds: float, proto: HTTPProtocol, server: str) -> bool:
        """Wait ``seconds``, less if echod drains; return whether the client left meanwhile.

        granian's ``client_disconnect()`` ends when the request's connection closes (a
        proxy closes it when it gives up with its 504).
        """
        left = asyncio.ensure_future(proto.client_disconnect())
        sleep = asyncio.ensure_future(self._drain.sleep(seconds, server))
        try:
            await asyncio.wait((left, sleep), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in (left, sleep):
                if not waiting.done():
                    waiting.cancel()
        return left.done() and not left.cancelled() and left.exception() is None

    @staticmethod
    def _answer(
        proto: HTTPProtocol,
        record: RequestRecord,
        status: int,
        headers: list[tuple[str, str]],
        content: bytes,
    ) -> None:
        if status in _NO_BODY:
            proto.response_empty(status, stamp(record, status, headers))
        else:
            send(proto, record.method, status, stamp(record, status, headers), content)
        if status >= 400:  # noqa: PLR2004 - the log line of a 4xx or 5xx says why
            record.detail = "the request asked for this status"

    def _report(
        self, scope: Scope, headers: Headers, args: dict[str, list[str]], body: bytes, rid: str
    ) -> dict[str, Any]:
        try:
            text: str | None = body.decode() if len(body) <= TEXT_LIMIT else None
        except UnicodeDecodeError:
            text = None
        sha256 = hashlib.sha256(body).hexdigest()
        if isinstance(body, Decoded):
            received = {
                "contentEncoding": list(body.codings),
                "bytes": body.received,
                "sha256": body.received_sha256,
            }
        else:
            received = {"contentEncoding": [], "bytes": len(body), "sha256": sha256}
        report = {
            "method": scope.method,
            "path": scope.path,
            "query": scope.query_string,
            "args": args,
            "httpVersion": HTTP_VERSIONS.get(scope.http_version, scope.http_version),
            "scheme": scope.scheme,
            "authority": scope.authority,
            "client": scope.client,
            "server": scope.server,
            "headers": [[name, redacted(name, value)] for name, value in headers.items()],
            "forwarded": forwarded(headers),
            "body": {"bytes": len(body), "sha256": sha256, "text": text, "received": received},
            "instance": self._instance,
            "requestId": rid,
        }
        token = token_report(headers, self._tokens)
        if token is not None:
            report["token"] = token
        return report
