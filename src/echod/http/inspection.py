"""Inspection: ``/api/inspect`` reports the request as it arrived, and answers as asked.

The report says what a proxy in front did to a request: its method, path, query,
version, scheme, peer, headers (with credentials redacted), what ``Forwarded`` and the
``X-Forwarded-*`` headers claim (reported, never trusted), its body's size and hash,
which echod instance answered, and what a bearer token carries (:func:`token_report`).
The request may also ask for a status (200 to 599) and a delay (up to ``--max-delay``),
so that a test can make an answer slow or failing on purpose. Delays wait without
blocking the worker, at most :data:`MAX_DELAYED` at a time per worker, and end at once
when echod drains.
"""

from __future__ import annotations

import binascii
import hashlib
from base64 import b64decode
from typing import TYPE_CHECKING, Any

import msgspec

from echod.http.answers import HTTP_VERSIONS, JSON, NO_STORE, send, stamp
from echod.http.bearer import NO_KEYS, bearer_token, peek
from echod.http.controls import Bounds, control, delay_ms, query_args
from echod.http.forwarded import forwarded
from echod.http.problems import InvalidToken, ServiceUnavailable

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from granian.rsgi import Headers, HTTPProtocol, Scope  # type: ignore[attr-defined]

    from echod.http.bearer import Tokens
    from echod.http.drain import Drain
    from echod.telemetry.records import RequestRecord

__all__ = ["MAX_DELAYED", "TEXT_LIMIT", "Inspector", "redacted", "token_report"]

#: Delayed requests in flight per worker; one more is answered 503 with Retry-After: 1.
MAX_DELAYED = 1000
#: The longest body shown as text in the report, in bytes; a longer one shows null.
TEXT_LIMIT = 64 * 1024
#: What a forced status may be.
STATUS = Bounds(200, 599)
_NO_BODY = frozenset({204, 304})
_REDACTED = "<redacted>"
_CREDENTIALS = frozenset({"authorization", "proxy-authorization"})
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
        tokens: Tokens | None = None,
    ) -> None:
        """Report ``instance``; honour delays up to ``max_delay`` seconds.

        ``tokens`` verifies the bearer tokens the report shows; without it, none is.
        """
        self._tokens = tokens
        self._instance = instance
        self._delay = delay_ms(max_delay)
        self._drain = drain
        self._delayed = 0

    def __call__(
        self, scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes
    ) -> Coroutine[Any, Any, None] | None:
        """Answer with the report, after the delay and with the status the request asks."""
        headers = scope.headers
        args = query_args(scope.query_string)
        status = control(args, "status", STATUS, headers, "x-echod-status") or 200
        wait = control(args, "delay_ms", self._delay, headers, "x-echod-delay-ms")
        report = _encode(self._report(scope, headers, args, body, record.request_id)) + b"\n"
        if wait:
            if self._delayed >= MAX_DELAYED:
                raise ServiceUnavailable(
                    f"{MAX_DELAYED} delayed requests are waiting in this worker already"
                )
            return self._after(wait, proto, record, status, report, record.server)
        self._answer(proto, record, status, report)
        return None

    async def _after(
        self,
        wait: int,
        proto: HTTPProtocol,
        record: RequestRecord,
        status: int,
        report: bytes,
        listener: str,
    ) -> None:
        self._delayed += 1
        try:
            await self._drain.sleep(wait / 1000, listener)  # cut short when echod drains
        finally:
            self._delayed -= 1
        self._answer(proto, record, status, report)

    @staticmethod
    def _answer(proto: HTTPProtocol, record: RequestRecord, status: int, body: bytes) -> None:
        if status in _NO_BODY:
            proto.response_empty(status, stamp(record, status, [NO_STORE]))
        else:
            send(proto, record.method, status, stamp(record, status, [JSON, NO_STORE]), body)
        if status >= 400:  # noqa: PLR2004 - the log line of a 4xx or 5xx says why
            record.detail = "the request asked for this status"

    def _report(
        self, scope: Scope, headers: Headers, args: dict[str, list[str]], body: bytes, rid: str
    ) -> dict[str, Any]:
        try:
            text: str | None = body.decode() if len(body) <= TEXT_LIMIT else None
        except UnicodeDecodeError:
            text = None
        report = {
            "method": scope.method,
            "path": scope.path,
            "query": scope.query_string,
            "args": args,
            "httpVersion": HTTP_VERSIONS.get(scope.http_version, scope.http_version),
            "scheme": scope.scheme,
            "client": scope.client,
            "server": scope.server,
            "headers": [[name, redacted(name, value)] for name, value in headers.items()],
            "forwarded": forwarded(headers),
            "body": {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(), "text": text},
            "instance": self._instance,
            "requestId": rid,
        }
        token = token_report(headers, self._tokens)
        if token is not None:
            report["token"] = token
        return report
