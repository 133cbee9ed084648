"""Forward auth: ``/auth/verify`` tells a proxy whether a request's credentials are good.

nginx (``auth_request``), Caddy (``forward_auth``), Traefik (ForwardAuth) and Envoy
(``ext_authz`` in HTTP mode) send it the headers of each request they are to let
through, and pass the request on when it answers 2xx. The app has verified the
credentials by the time the handler runs (:mod:`echod.http.app`), so the handler only
says who they name: 200 with an empty body and

- ``X-Auth-User``: the user, or the token's ``sub``, percent-encoded outside printable
  ASCII (so that no header can be split or forged through it);
- ``X-Auth-Scheme``: ``basic`` or ``bearer``;
- ``X-Auth-Claims``, for a token: its claims as compact JSON in base64url, when that is
  at most 4 KiB (:data:`echod.http.bearer.MAX_CLAIMS_HEADER_BYTES`).

Anything else is the app's 401 with its challenge, which the proxies pass on. The
request the proxy asks about is read from the headers that each sends
(:func:`original_request`) and goes into the log line, whatever the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, unquote_plus

from echod.http.answers import NO_STORE, stamp
from echod.http.auth import BEARER
from echod.telemetry.records import Original

if TYPE_CHECKING:
    from granian.rsgi import HTTPProtocol, Scope  # type: ignore[attr-defined]

    from echod.http.bearer import Tokens
    from echod.telemetry.records import RequestRecord

__all__ = ["ANSWER_HEADERS", "ForwardAuth", "header_text", "original_request", "redact_query"]

#: The headers of a 200, which a proxy copies onto the request it lets through.
ANSWER_HEADERS = ("X-Auth-User", "X-Auth-Scheme", "X-Auth-Claims")
_USER, _SCHEME, _CLAIMS = (name.lower() for name in ANSWER_HEADERS)

# Header text stays printable ASCII; "%" is encoded too, so that decoding is exact.
_SAFE = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")
# RFC 6750 section 2.3: a token may travel as this query parameter.
_TOKEN_PARAMETER = "access_token"  # noqa: S105 - a parameter's name, not a secret
_REDACTED = "<redacted>"


def header_text(value: str) -> str:
    """``value`` as a header value: percent-encoded (UTF-8) outside printable ASCII."""
    return quote(value, safe=_SAFE)


def redact_query(uri: str) -> str:
    """``uri`` with the value of each ``access_token`` query parameter redacted."""
    path, question, query = uri.partition("?")
    if not question or _TOKEN_PARAMETER not in query.lower():
        return uri
    pairs = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        secret = unquote_plus(name).lower() == _TOKEN_PARAMETER
        pairs.append(f"{name}={_REDACTED}" if secret and equals else pair)
    return f"{path}?{'&'.join(pairs)}"


def original_request(scope: Scope, route_path: str) -> Original:
    """The request a proxy asks about, as its headers say (none is trusted for anything).

    The method is ``X-Original-Method`` (nginx) or ``X-Forwarded-Method`` (Traefik,
    Caddy); the URI ``X-Original-URI`` or ``X-Forwarded-Uri``; the host and scheme
    ``X-Forwarded-Host`` and ``X-Forwarded-Proto``. Envoy's ext_authz sends neither
    method nor URI header: it asks with the original method, at ``route_path`` followed
    by the original path, which stand in for them.
    """
    headers = scope.headers
    method = headers.get("x-original-method") or headers.get("x-forwarded-method")
    uri = headers.get("x-original-uri") or headers.get("x-forwarded-uri")
    if uri is None and scope.path.startswith(route_path + "/"):
        query = scope.query_string
        uri = scope.path[len(route_path) :] + (f"?{query}" if query else "")
        method = method or scope.method
    return Original(
        method=method,
        uri=None if uri is None else redact_query(uri),
        host=headers.get("x-forwarded-host"),
        proto=headers.get("x-forwarded-proto"),
    )


class ForwardAuth:
    """The handler of ``/auth/verify`` (see :data:`echod.http.app.Handler`)."""

    def __init__(self, route_path: str, tokens: Tokens | None) -> None:
        """Answer at ``route_path``; ``tokens`` gives a verified token's claims."""
        self._path = route_path
        self._tokens = tokens

    def annotate(self, scope: Scope, record: RequestRecord) -> None:
        """Write the original request into the record (see :data:`echod.http.app.Annotate`)."""
        record.original = original_request(scope, self._path)

    def __call__(
        self, scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes
    ) -> None:
        """200 with who the credentials name; the app has verified them."""
        self.annotate(scope, record)
        headers = [
            NO_STORE,
            (_USER, header_text(record.user or "")),
            (_SCHEME, record.scheme or ""),
        ]
        authorization = scope.headers.get("authorization")
        if record.scheme == BEARER and self._tokens is not None and authorization is not None:
            claims = self._tokens.verify(authorization).claims  # remembered: a lookup
            if claims is not None:
                headers.append((_CLAIMS, claims))
        proto.response_empty(200, stamp(record, 200, headers))
