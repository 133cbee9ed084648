"""CORS: which browser origins may call the API, and the headers that tell browsers so.

Off unless ``--cors-origin`` lists origins. A preflight (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``) from a listed origin to an ``/api/`` route is answered
204 without credentials, naming the route's methods and the headers a page may send.
Every other answer to a listed origin carries the headers that let the page read it,
401, 404 and 5xx included. Anything else is handled as if CORS were off. ``*`` answers
every origin with ``*`` and never allows credentials (browsers refuse both together).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from echod.http.answers import WithHeaders

if TYPE_CHECKING:
    from collections.abc import Iterable

    from granian.rsgi import Headers, HTTPProtocol  # type: ignore[attr-defined]

    from echod.routes import Route

__all__ = ["ALLOW_HEADERS", "CONTROL_HEADERS", "EXPOSE_HEADERS", "MAX_AGE", "Cors"]

#: The controls' headers (:mod:`echod.http.controls`), which a page may send.
CONTROL_HEADERS = (
    "x-echod-status", "x-echod-delay-ms", "x-echod-seed", "x-echod-header", "x-echod-body",
    "x-echod-content-type", "x-echod-location", "x-echod-retry-after", "x-echod-encoding",
    "x-echod-count", "x-echod-interval-ms", "x-echod-bytes", "x-echod-chunks",
    "x-echod-duration-ms", "x-echod-key", "x-echod-fail", "x-echod-fail-every", "x-echod-ttl",
    "x-echod-rate", "x-echod-burst",
)  # fmt: skip
#: The request headers a page may send: credentials, a type, a coding, an id, the
#: validators and ranges of a download, and the controls.
ALLOW_HEADERS = ", ".join(
    (
        "authorization", "content-type", "content-encoding", "x-request-id", "range",
        "if-range", "if-none-match", *CONTROL_HEADERS,
    )
)  # fmt: skip
#: The answer headers a page may read.
EXPOSE_HEADERS = (
    "x-request-id, x-response-time, x-echod-chosen, etag, content-range, content-encoding, "
    "x-echod-attempt, ratelimit, ratelimit-policy, retry-after"
)
#: Seconds a browser may keep a preflight's answer.
MAX_AGE = 600
_VARY = ("vary", "origin")
_ANY = "*"


class Cors:
    """The origins allowed to call the API from a browser."""

    def __init__(self, origins: Iterable[str]) -> None:
        """Allow ``origins`` (lower case, as browsers send them), or any with ``*``."""
        self._origins = frozenset(origins)
        self._any = _ANY in self._origins

    def allows(self, origin: str) -> bool:
        """Whether a page from ``origin`` may call the API."""
        return self._any or origin.lower() in self._origins

    def wrap(
        self, headers: Headers, method: str, proto: HTTPProtocol
    ) -> tuple[HTTPProtocol, str | None]:
        """The protocol to answer a request through, and its origin if it is a preflight.

        An answer to an allowed origin carries the CORS headers, and a preflight's carries
        those :meth:`preflight` gives it; any other request is left as is, an ``OPTIONS``
        without ``Access-Control-Request-Method`` included.
        """
        origin = headers.get("origin")
        if origin is None or not self.allows(origin):
            return proto, None
        if method == "OPTIONS":
            if "access-control-request-method" not in headers:
                return proto, None  # not a preflight: answered as if CORS were off
            return cast("HTTPProtocol", WithHeaders(proto, [])), origin
        return cast("HTTPProtocol", WithHeaders(proto, self.answer(origin))), None

    def preflight(self, origin: str, route: Route) -> list[tuple[str, str]]:
        """The headers of a 204 to a preflight for ``route``."""
        methods = (*route.methods, *(("GET",) if route.websocket else ()))
        return [
            *self._allow(origin),
            ("access-control-allow-methods", ", ".join(methods)),
            ("access-control-allow-headers", ALLOW_HEADERS),
            ("access-control-max-age", str(MAX_AGE)),
        ]

    def answer(self, origin: str) -> list[tuple[str, str]]:
        """The headers every other answer to ``origin`` carries."""
        return [*self._allow(origin), ("access-control-expose-headers", EXPOSE_HEADERS)]

    def _allow(self, origin: str) -> list[tuple[str, str]]:
        if self._any:
            return [("access-control-allow-origin", _ANY), _VARY]
        return [
            ("access-control-allow-origin", origin),
            ("access-control-allow-credentials", "true"),
            _VARY,
        ]
