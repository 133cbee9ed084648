"""App: the wiring. What runs for each request, in order, over the route table.

For each request, in order (the routes are :data:`echod.routes.ROUTES`):

1. A probe route (``/health``, ``/ready``, ``/metrics``, ``/openapi.json``) asked with
   one of its methods is answered at once, without auth, and is neither logged nor
   counted.
2. Anything else needs basic auth: 401 without good credentials.
3. A path no route has is 404, and a route asked with another method is 405 with
   ``Allow``. Otherwise the route's handler answers: ``POST``/``PUT /api/echo`` reads
   the body (:mod:`echod.bodies`: 413 over the limit) and echoes it.
4. The answer carries ``X-Request-ID`` and ``X-Response-Time``, and ``Connection:
   close`` once the worker is stopping (:mod:`echod.connections`); then the request is
   logged and counted, once, as one :class:`echod.observe.RequestRecord`.

A WebSocket handshake goes to :mod:`echod.websocket` instead, which follows the same
order with the WebSocket's own answers.

Every answer is ``Cache-Control: no-store``, so that no cache in front keeps a probe, a
scrape or an echo. Every JSON body ends with a newline. An answer to ``HEAD`` carries
the ``Content-Length`` that ``GET`` would have, and no body, over every protocol.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from echod.answers import CLOSE, JSON, NO_STORE, PROBLEM, problem_body, send
from echod.auth import Authenticator
from echod.bodies import BodyReader
from echod.connections import Connections
from echod.echo import echo
from echod.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    Problem,
)
from echod.logs import AccessLog
from echod.observe import HTTP_VERSIONS, Observer, RequestIds, RequestRecord
from echod.openapi import openapi_document
from echod.probes import Probes
from echod.routes import ROUTES, UNMATCHED
from echod.websocket import SocketLimits, WebSockets

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Mapping

    from granian.rsgi import HTTPProtocol, Scope  # type: ignore[attr-defined]
    from prometheus_client import CollectorRegistry

    from echod.config import Settings
    from echod.layout import Recorder
    from echod.routes import Route

__all__ = ["CLIENT_GONE", "EchoApp", "create_app"]

#: What the status of a request is recorded as when the client left before the answer.
CLIENT_GONE = 499

#: What answers one route's requests: it gets the scope, the protocol, the request id,
#: the start time and the body (empty unless the route reads it), sends the answer, and
#: returns the status it sent, or an awaitable of it when it has to wait.
Handler = Callable[["Scope", "HTTPProtocol", str, float, bytes], "int | Awaitable[int]"]

_now = time.perf_counter


class EchoApp:
    """The RSGI application: routes each request by the route table and records it."""

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        access_log: AccessLog,
        observer: Observer,
        probes: Probes,
        websockets: WebSockets,
        connections: Connections,
        max_body_bytes: int,
    ) -> None:
        """Wire the parts together; :func:`create_app` builds them from settings."""
        self._auth = authenticator
        self._log = access_log
        self._observer = observer
        self._websockets = websockets
        self._connections = connections
        self._body = BodyReader(max_body_bytes)
        self._request_id = RequestIds()
        # Each path's route, and the method that answers it, found once by its name
        # among the app's own handlers and the probes'.
        self._routes: dict[str, Route] = {route.path: route for route in ROUTES}
        self._handlers: dict[str, Handler] = {
            route.path: getattr(self, route.handler, None) or getattr(probes, route.handler)
            for route in ROUTES
        }

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start writing log lines from the worker's loop; end connections well on a stop."""
        self._log.bind(loop)
        self._connections.close_before_stopping(loop)

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
        hostless = version == "1.1" and "host" not in headers
        if route is not None and route.probe and method in route.methods and not hostless:
            self._handlers[path](scope, proto, rid, start, b"")
            return
        user: str | None = None
        error: BaseException | None = None
        detail: str | None = None
        try:
            if hostless:
                raise BadRequest("an HTTP/1.1 request needs a Host header (RFC 9112 section 3.2)")
            checked = self._auth.check(headers.get("authorization"))
            user = checked if type(checked) is str else await self._auth.verify(checked)  # type: ignore[arg-type]
            if route is None:
                raise NotFound(f"no route matches the path {path!r}")
            if method not in route.methods:
                raise MethodNotAllowed(method, route.allow)
            body = await self._body(headers, proto) if route.body else b""
            status = self._handlers[path](scope, proto, rid, start, body)
            if type(status) is not int:  # the handler has something to wait for
                status = await cast("Awaitable[int]", status)
            duration_ms = (_now() - start) * 1000.0
        except Problem as problem:
            status = problem.status
            detail = problem.detail
            duration_ms = self._problem(proto, method, problem, path, rid, start)
        except (ProtocolClosed, ProtocolError):  # the client left while sending the body
            status = CLIENT_GONE
            detail = "the client closed the connection before the answer"
            duration_ms = (_now() - start) * 1000.0
        except Exception as exc:  # noqa: BLE001 - the edge: log it once, answer 500
            error = exc
            status = 500
            internal = Problem("an unexpected error occurred; it is logged under this request id")
            detail = internal.detail
            duration_ms = self._problem(proto, method, internal, path, rid, start)
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
            )
        )

    # --- the handlers: each answers its route's requests and returns the status it sent

    def echo(self, scope: Scope, proto: HTTPProtocol, rid: str, start: float, body: bytes) -> int:
        """``POST``/``PUT /api/echo``: the JSON object with ``"echoed": true``."""
        echoed = echo(body) + b"\n"
        duration_ms = (_now() - start) * 1000.0
        headers = [
            JSON,
            NO_STORE,
            ("x-request-id", rid),
            ("x-response-time", f"{duration_ms:.3f}ms"),
        ]
        if self._connections.stopping:
            headers.append(CLOSE)
        proto.response_bytes(200, headers, echoed)
        return 200

    def raw(self, scope: Scope, proto: HTTPProtocol, rid: str, start: float, body: bytes) -> int:
        """``POST``/``PUT /api/raw``: the body byte for byte, under the request's type."""
        content_type = scope.headers.get("content-type") or "application/octet-stream"
        duration_ms = (_now() - start) * 1000.0
        headers = [
            ("content-type", content_type),
            NO_STORE,
            ("x-request-id", rid),
            ("x-response-time", f"{duration_ms:.3f}ms"),
        ]
        if self._connections.stopping:
            headers.append(CLOSE)
        proto.response_bytes(200, headers, body)
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
        if self._connections.stopping:
            headers.append(CLOSE)
        send(proto, method, problem.status, headers, body)
        return duration_ms


def create_app(
    settings: Settings,
    *,
    users: Mapping[str, bytes],
    recorder: Recorder,
    registry: CollectorRegistry,
    is_ready: Callable[[], bool],
    log_fd: int = 1,
) -> EchoApp:
    """Build the application for one worker process from its settings and shared parts."""
    access_log = AccessLog(settings.log_level, log_fd)
    authenticator = Authenticator(users)
    observer = Observer(access_log, recorder)
    connections = Connections(is_ready)
    limits = SocketLimits(
        max_message_bytes=settings.max_body_bytes,
        idle_timeout=settings.ws_idle_timeout,
        max_connections=settings.max_ws_connections,
    )
    return EchoApp(
        authenticator=authenticator,
        access_log=access_log,
        observer=observer,
        probes=Probes(
            registry=registry,
            is_ready=is_ready,
            connections=connections,
            openapi=openapi_document(),
        ),
        max_body_bytes=settings.max_body_bytes,
        websockets=WebSockets(
            authenticator=authenticator,
            observer=observer,
            recorder=recorder,
            is_ready=is_ready,
            connections=connections,
            limits=limits,
        ),
        connections=connections,
    )
