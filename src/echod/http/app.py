"""App: the wiring. What runs for each request, in order, over the route table.

For each request, in order (the routes are :data:`echod.routes.ROUTES`):

1. A probe route (``/health``, ``/ready``, ``/metrics``, ``/openapi.json``) asked with
   one of its methods is answered at once, without auth, and is neither logged nor
   counted.
2. Anything else needs basic auth: 401 without good credentials.
3. A path no route has is 404, and a route asked with another method is 405 with
   ``Allow``. Otherwise the route's handler answers: ``POST``/``PUT /api/echo`` reads
   the body (:mod:`echod.http.bodies`: 413 over the limit) and echoes it.
4. The answer carries ``X-Request-ID`` and ``X-Response-Time``, and ``Connection:
   close`` once granian stops the worker (:mod:`echod.http.drain`); then the request is
   logged and counted, once, as one :class:`echod.telemetry.records.RequestRecord`.

A WebSocket handshake goes to :mod:`echod.http.websocket` instead, which follows the same
order with the WebSocket's own answers.

Every answer is ``Cache-Control: no-store``, so that no cache in front keeps a probe, a
scrape or an echo. Every JSON body ends with a newline. An answer to ``HEAD`` carries
the ``Content-Length`` that ``GET`` would have, and no body, over every protocol.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from echod.http.answers import (
    CLIENT_GONE,
    CLOSE,
    HTTP_VERSIONS,
    JSON,
    NO_STORE,
    PROBLEM,
    Answer,
    WithHeaders,
    problem_body,
    send,
)
from echod.http.bodies import BodyReader
from echod.http.echo import echo
from echod.http.problems import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    Problem,
)
from echod.http.request_ids import RequestIds
from echod.routes import ROUTES, UNMATCHED
from echod.telemetry.records import RequestRecord

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Mapping

    from granian.rsgi import Headers, HTTPProtocol, Scope  # type: ignore[attr-defined]

    from echod.http.auth import Authenticator
    from echod.http.cors import Cors
    from echod.http.drain import Drain
    from echod.http.websocket import WebSockets
    from echod.routes import Route
    from echod.telemetry.access_log import AccessLog
    from echod.telemetry.observer import Observer

__all__ = ["EchoApp", "Handler"]


#: What answers one route's requests: it gets the scope, the protocol, the request id,
#: the start time and the body (empty unless the route reads it), sends the answer, and
#: returns the status it sent (or an :class:`echod.telemetry.records.Answer` that says more), or an
#: awaitable of that when it has to wait.
Handler = Callable[["Scope", "HTTPProtocol", str, float, bytes], object]

_now = time.perf_counter


class EchoApp:
    """The RSGI application: routes each request by the route table and records it."""

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        access_log: AccessLog,
        observer: Observer,
        handlers: Mapping[str, Handler],
        websockets: WebSockets,
        cors: Cors | None,
        drain: Drain,
        max_body_bytes: int,
    ) -> None:
        """Wire the parts together; :func:`echod.http.factory.create_app` builds them.

        ``handlers`` answer the routes whose handler the app does not have itself.
        """
        self._auth = authenticator
        self._log = access_log
        self._observer = observer
        self._websockets = websockets
        self._cors = cors
        self._drain = drain
        # A bound method: calling an object's __call__ costs about 2 % of an echo.
        self._read_body = BodyReader(max_body_bytes).read
        self._request_id = RequestIds()
        # Each path's route, and what answers it, found once by the route's handler name.
        self._routes: dict[str, Route] = {route.path: route for route in ROUTES}
        self._handlers: dict[str, Handler] = {
            route.path: getattr(self, route.handler, None) or handlers[route.handler]
            for route in ROUTES
        }

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start writing log lines from the worker's loop; end connections well on a stop."""
        self._log.bind(loop)
        self._drain.close_before_stopping(loop)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write the last log lines and stop the hashing thread."""
        self._log.flush()
        self._log.bind(None)
        self._auth.close()

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        """Answer one request."""
        start = _now()
        headers = scope.headers
        rid = self._request_id(headers.get("x-request-id"))
        if scope.proto == "ws":
            await self._websockets.serve(scope, proto, rid)  # type: ignore[arg-type]
            return
        method = scope.method
        path = scope.path
        version = scope.http_version
        route = self._routes.get(path)
        preflight: str | None = None
        if self._cors is not None or self._drain.stopping:
            proto, preflight = self._wrap(headers, method, proto)
        hostless = version == "1.1" and "host" not in headers
        if route is not None and route.probe and method in route.methods and not hostless:
            self._handlers[path](scope, proto, rid, start, b"")
            return
        user: str | None = None
        error: BaseException | None = None
        detail: str | None = None
        events: int | None = None
        try:
            if hostless:
                raise BadRequest("an HTTP/1.1 request needs a Host header (RFC 9112 section 3.2)")
            if preflight is not None and path.startswith("/api/"):
                status = self._preflight(preflight, proto, route, path, rid)
            else:
                checked = self._auth.check(headers.get("authorization"))
                user = checked if type(checked) is str else await self._auth.verify(checked)  # type: ignore[arg-type]
                if route is None:
                    raise NotFound(f"no route matches the path {path!r}")
                if method not in route.methods:
                    raise MethodNotAllowed(method, route.allow)
                body = await self._read_body(headers, proto) if route.body else b""
                result = self._handlers[path](scope, proto, rid, start, body)
                if type(result) is int:
                    status = result
                else:  # it had something to wait for, or more to say
                    status, detail, events = await _settled(result)
            duration_ms = (_now() - start) * 1000.0
        except Exception as exc:  # noqa: BLE001 - the edge: every failure is answered once
            status, detail, error, duration_ms = self._failed(exc, proto, method, path, rid, start)
        self._observer.record(
            RequestRecord(
                method=method,
                path=path,
                route=UNMATCHED if route is None else route.label,
                http_version=HTTP_VERSIONS.get(version, version),
                status=status,
                duration_ms=duration_ms,
                request_id=rid,
                user=user,
                remote=scope.client,
                detail=detail,
                error=error,
                events=events,
            )
        )

    def _wrap(
        self, headers: Headers, method: str, proto: HTTPProtocol
    ) -> tuple[HTTPProtocol, str | None]:
        """The protocol that adds the CORS headers, and ``Connection: close`` once stopping.

        Also the request's origin if it is a CORS preflight.
        """
        preflight = None
        if self._cors is not None:
            proto, preflight = self._cors.wrap(headers, method, proto)
        if self._drain.stopping:  # the client is to send no more on this connection
            proto = cast("HTTPProtocol", WithHeaders(proto, [CLOSE]))
        return proto, preflight

    def _failed(
        self,
        exc: Exception,
        proto: HTTPProtocol,
        method: str,
        path: str,
        rid: str,
        start: float,
    ) -> tuple[int, str, Exception | None, float]:
        """Answer a request that failed; return its status, detail, error and duration."""
        if isinstance(exc, Problem):
            return exc.status, exc.detail, None, self._problem(proto, method, exc, path, rid, start)
        if isinstance(exc, ProtocolClosed | ProtocolError):  # it left while sending the body
            detail = "the client closed the connection before the answer"
            return CLIENT_GONE, detail, None, (_now() - start) * 1000.0
        internal = Problem("an unexpected error occurred; it is logged under this request id")
        return 500, internal.detail, exc, self._problem(proto, method, internal, path, rid, start)

    def _preflight(
        self, origin: str, proto: HTTPProtocol, route: Route | None, path: str, rid: str
    ) -> int:
        """Answer a CORS preflight from an allowed origin, without credentials: 204."""
        if route is None or self._cors is None:
            raise NotFound(f"no route matches the path {path!r}")
        proto.response_empty(204, [*self._cors.preflight(origin, route), ("x-request-id", rid)])
        return 204

    # --- the handlers: each answers its route's requests and returns the status it sent

    def echo(self, scope: Scope, proto: HTTPProtocol, rid: str, start: float, body: bytes) -> int:
        """``POST``/``PUT /api/echo``: the JSON object with ``"echoed": true``."""
        echoed = echo(body) + b"\n"
        duration_ms = (_now() - start) * 1000.0
        proto.response_bytes(
            200,
            [JSON, NO_STORE, ("x-request-id", rid), ("x-response-time", f"{duration_ms:.3f}ms")],
            echoed,
        )
        return 200

    def raw(self, scope: Scope, proto: HTTPProtocol, rid: str, start: float, body: bytes) -> int:
        """``POST``/``PUT /api/raw``: the body byte for byte, under the request's type."""
        content_type = scope.headers.get("content-type") or "application/octet-stream"
        duration_ms = (_now() - start) * 1000.0
        proto.response_bytes(
            200,
            [
                ("content-type", content_type),
                NO_STORE,
                ("x-request-id", rid),
                ("x-response-time", f"{duration_ms:.3f}ms"),
            ],
            body,
        )
        return 200

    # --- the parts the handlers share

    def _problem(
        self,
        proto: HTTPProtocol,
        method: str,
        problem: Problem,
        path: str,
        rid: str,
        start: float,
    ) -> float:
        body = problem_body(problem, path, rid)
        duration_ms = (_now() - start) * 1000.0
        headers = [
            PROBLEM,
            NO_STORE,
            ("x-request-id", rid),
            ("x-response-time", f"{duration_ms:.3f}ms"),
            *problem.headers,
        ]
        send(proto, method, problem.status, headers, body)
        return duration_ms


async def _settled(result: object) -> tuple[int, str | None, int | None]:
    """A handler's status, the detail and the events it adds, once it has them."""
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, Answer):
        return result.status, result.detail, result.events
    return cast("int", result), None, None
