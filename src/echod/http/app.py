"""App: what runs for each request, in order, over the route table.

For each request, in order (the routes are :data:`echod.routes.ROUTES`; each path's
:class:`Endpoint` is found once, and carries what the request is counted under):

1. A :class:`echod.telemetry.records.RequestRecord` is made, with the request's id: the
   client's ``X-Request-ID`` when it is safe to repeat, or a new UUID4.
2. A probe route (``/health``, ``/ready``, ``/metrics``, ``/openapi.json``) asked with
   one of its methods is answered at once, without auth, and is neither logged nor
   counted.
3. A WebSocket handshake must be a GET over HTTP/1.1 (400); an HTTP/1.1 request must
   have a ``Host`` (400). A CORS preflight to ``/api/`` is answered 204 without
   credentials (:mod:`echod.http.cors`).
4. Anything else needs credentials, Basic or (with a key set) a bearer token: 401
   without good ones (:mod:`echod.http.auth`). ``/auth/verify`` is such a route: its 401,
   or its handler's 200, is the answer a proxy's forward auth asks for.
5. A WebSocket goes to :mod:`echod.http.websocket`. Otherwise a path no route has is 404,
   and a route asked with another method is 405 with ``Allow`` (``/auth/verify`` takes
   any); the route's handler answers, with the body read first when the route takes one
   (:mod:`echod.http.bodies`: 413 over the limit).
6. Every answer carries ``X-Request-ID`` and ``X-Response-Time``
   (:func:`echod.http.answers.stamp`), every answer under ``/api/`` ``Cache-Control:
   no-store``, and each answer of a worker that granian is stopping ``Connection:
   close`` (:mod:`echod.http.drain`). A failure is answered once, as a problem; then the
   request is logged and counted, once, from its record.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from echod.http.answers import (
    CLIENT_GONE,
    CLOSE,
    HTTP_VERSIONS,
    NO_STORE,
    WithHeaders,
    send_problem,
    stamp,
)
from echod.http.bodies import BodyDeadlines, BodyReader
from echod.http.problems import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    Problem,
)
from echod.http.request_ids import RequestIds
from echod.telemetry.records import RequestRecord, failure

if TYPE_CHECKING:
    from collections.abc import Mapping

    from granian._granian import RSGIWebsocketProtocol
    from granian.rsgi import Headers, HTTPProtocol, Scope  # type: ignore[attr-defined]

    from echod.http.auth import Authenticator
    from echod.http.cors import Cors
    from echod.http.drain import Drain
    from echod.http.websocket import WebSockets
    from echod.routes import Route
    from echod.telemetry.access_log import AccessLog
    from echod.telemetry.metric_layout import Tally
    from echod.telemetry.observer import Observer

__all__ = ["Annotate", "EchoApp", "Endpoint", "Handler"]


#: What answers one route's requests: it gets the scope, the protocol, the request's
#: record and the body (empty unless the route reads it), and sends the answer, stamped
#: (:func:`echod.http.answers.stamp`). It returns None, or an awaitable when it has to
#: wait (a delay, a stream); what it has to add to the record, it writes there.
Handler = Callable[["Scope", "HTTPProtocol", RequestRecord, bytes], Awaitable[None] | None]

_now = time.perf_counter


#: What a failed request to a route adds to its record from the request (the original
#: request a proxy asks ``/auth/verify`` about); its handler does the same on success.
Annotate = Callable[["Scope", RequestRecord], None]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A path's route, what answers it, and what its requests are counted under."""

    route: Route | None
    handler: Handler | None
    tally: Tally
    annotate: Annotate | None = None


class EchoApp:
    """The RSGI application: routes each request by the route table and records it."""

    def __init__(
        self,
        *,
        endpoints: dict[str, Endpoint],
        unmatched: Endpoint,
        authenticator: Authenticator,
        access_log: AccessLog,
        observer: Observer,
        websockets: WebSockets,
        cors: Cors | None,
        drain: Drain,
        max_body_bytes: int,
        body_timeout: float,
        count_coding: Callable[[int, str], None] = lambda _d, _c: None,
    ) -> None:
        """Wire the parts together; :func:`echod.http.factory.create_app` builds them.

        ``endpoints`` has each route's path; ``unmatched`` stands for every other path.
        ``count_coding`` is told of each coding a request body is decoded from.
        """
        self._endpoints = endpoints
        self._unmatched = unmatched
        # Routes whose path ends in a parameter, found by prefix when no path matches.
        self._parameters = tuple(
            (prefix, endpoint)
            for endpoint in endpoints.values()
            if endpoint.route is not None and (prefix := endpoint.route.prefix) is not None
        )
        # Routes that take every path under theirs, found the same way.
        self._subtrees = tuple(
            (endpoint.route.path + "/", endpoint)
            for endpoint in endpoints.values()
            if endpoint.route is not None and endpoint.route.subtree
        )
        self._auth = authenticator
        self._log = access_log
        self._observer = observer
        self._websockets = websockets
        self._cors = cors
        self._drain = drain
        # A bound method: calling an object's __call__ costs about 2 % of an echo.
        self._deadlines = BodyDeadlines(body_timeout)
        self._read_body = BodyReader(max_body_bytes, self._deadlines, count_coding).read
        self._reads = self._deadlines.reads
        self._watch: asyncio.Task[None] | None = None
        self._request_id = RequestIds()
        self._server = ""
        # Whether this server is being replaced: its answers close their connections.
        self._closing = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write log lines from ``loop``, the loop that serves, and watch the body reads."""
        self._log.bind(loop)
        self._watch = loop.create_task(self._deadlines.watch())

    async def stop(self) -> None:
        """End the long requests and have clients leave, before the servers stop."""
        await self._drain.stop()

    def for_server(self, server: str) -> EchoApp:
        """This app, for the server ``server`` of the process: the same parts, a name of its own.

        Each server gets one, so that a reload that replaces a server can end its requests
        and close its connections, and no other server's.
        """
        made = copy.copy(self)
        made._server = server  # noqa: SLF001 - a copy of its own class
        made._closing = False  # noqa: SLF001
        return made

    async def replacing(self) -> None:
        """End this server's long requests and have its clients leave: it is replaced.

        The server that replaces it already serves beside it; this one is to stop.
        """
        self._closing = True
        await self._drain.replace(self._server)

    def close(self, timeout: float = 1.0) -> None:
        """Write the last log lines (for ``timeout`` s at most) and stop the hashing thread."""
        self._log.flush(timeout)
        self._log.bind(None)
        self._auth.close()

    def use_users(self, users: Mapping[str, bytes]) -> None:
        """Check credentials against ``users`` from now on (a reload put them in service).

        Every server's copy of the app shares the one authenticator: nothing is
        remembered from before, so a removed user or a changed password is refused at
        once.
        """
        self._auth.use(users)

    def use_key_set(self, jwks: bytes) -> None:
        """Verify bearer tokens with the key set ``jwks`` from now on (a reload put it in service).

        Nothing remembered of tokens is kept, so a token of a key that left the set is
        refused at once.
        """
        self._auth.use_key_set(jwks)

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:  # noqa: C901, PLR0912, PLR0915 - the order of every request, in one place
        """Answer one request, then record it."""
        started = _now()
        headers = scope.headers
        path = scope.path
        endpoint = self._endpoints.get(path) or self._parameter(path)
        version = scope.http_version
        record = RequestRecord(
            method=scope.method,
            path=path,
            tally=endpoint.tally,
            http_version=HTTP_VERSIONS.get(version, version),
            request_id=self._request_id(headers.get("x-request-id")),
            remote=scope.client,
            started=started,
            server=self._server,
        )
        method = record.method
        route = endpoint.route
        websocket = scope.proto == "ws"
        preflight: str | None = None
        hostless = False
        if not websocket:
            if self._cors is not None or self._drain.stopping or self._closing:
                proto, preflight = self._wrap(headers, method, proto)
            hostless = version == "1.1" and "host" not in headers
            if route is not None and route.probe and method in route.methods and not hostless:
                endpoint.handler(scope, proto, record, b"")  # type: ignore[misc]
                return
        try:
            if websocket:
                self._websockets.check_opening(scope)
            elif hostless:
                raise BadRequest("an HTTP/1.1 request needs a Host header (RFC 9112 section 3.2)")
            if preflight is not None and path.startswith("/api/"):
                self._preflight(preflight, proto, route, record)
            else:
                verifying = self._auth.authenticate(headers.get("authorization"), record)
                if verifying is not None:
                    await verifying
                if websocket:
                    await self._websockets.serve(
                        scope,
                        proto,  # type: ignore[arg-type]
                        route,
                        record,
                        closing=self._closing,
                    )
                elif route is None:
                    raise NotFound(f"no route matches the path {path!r}")
                elif method not in route.methods and not route.any_method:
                    raise MethodNotAllowed(method, route.allow)
                else:
                    body = b""
                    if route.body:  # within --max-body-bytes and --body-timeout
                        reading = self._read_body(headers, proto, started)
                        try:
                            body = await reading
                        except asyncio.CancelledError:
                            if (late := self._deadlines.ended(reading)) is None:
                                raise
                            raise late from None
                        finally:
                            self._reads.pop(reading, None)
                    waiting = endpoint.handler(scope, proto, record, body)  # type: ignore[misc]
                    if waiting is not None:
                        await waiting
        except Exception as exc:  # noqa: BLE001 - the edge: every failure is answered once
            if endpoint.annotate is not None:
                endpoint.annotate(scope, record)
            self._failed(exc, proto, record, websocket=websocket)
        if websocket:  # a WebSocket's duration is the connection's
            record.duration_ms = (_now() - started) * 1000.0
        self._observer.record(record)

    def _parameter(self, path: str) -> Endpoint:
        """The endpoint of a route with a parameter that ``path`` fills, or the unmatched one.

        The parameter is one non-empty segment: ``/api/bytes/10`` fills ``/api/bytes/{n}``;
        ``/api/bytes/`` and ``/api/bytes/1/2`` do not. A route that takes its subtree
        takes any path under it.
        """
        for prefix, endpoint in self._parameters:
            if (
                path.startswith(prefix)
                and len(path) > len(prefix)
                and "/" not in path[len(prefix) :]
            ):
                return endpoint
        for prefix, endpoint in self._subtrees:
            if path.startswith(prefix):
                return endpoint
        return self._unmatched

    def _wrap(
        self, headers: Headers, method: str, proto: HTTPProtocol
    ) -> tuple[HTTPProtocol, str | None]:
        """The protocol that adds the CORS headers, and ``Connection: close`` once stopping.

        Also the request's origin if it is a CORS preflight.
        """
        preflight = None
        if self._cors is not None:
            proto, preflight = self._cors.wrap(headers, method, proto)
        if self._drain.stopping or self._closing:  # the client is to send no more here
            proto = cast("HTTPProtocol", WithHeaders(proto, [CLOSE]))
        return proto, preflight

    def _preflight(
        self, origin: str, proto: HTTPProtocol, route: Route | None, record: RequestRecord
    ) -> None:
        """Answer a CORS preflight from an allowed origin, without credentials: 204."""
        if route is None or self._cors is None:
            raise NotFound(f"no route matches the path {record.path!r}")
        headers = [*self._cors.preflight(origin, route), NO_STORE]
        proto.response_empty(204, stamp(record, 204, headers))

    @staticmethod
    def _failed(
        exc: Exception, proto: HTTPProtocol, record: RequestRecord, *, websocket: bool
    ) -> None:
        """Answer a request that failed, once, and say in its record what went wrong.

        A WebSocket refused before its upgrade gets the bare status (granian sends no
        more); an HTTP request gets the problem's JSON. A client that left while its body
        was read is recorded as :data:`echod.http.answers.CLIENT_GONE`. Anything else is
        a 500, recorded with its traceback.
        """
        if isinstance(exc, ProtocolClosed | ProtocolError):  # it left while sending the body
            record.status = CLIENT_GONE
            record.detail = "the client closed the connection before the answer"
            record.duration_ms = (_now() - record.started) * 1000.0
            return
        problem = exc if isinstance(exc, Problem) else None
        if problem is None:
            record.error = failure(exc)
            problem = Problem("an unexpected error occurred; it is logged under this request id")
        if websocket:
            cast("RSGIWebsocketProtocol", proto).close(problem.status)
            record.status, record.detail = problem.status, problem.detail
        else:
            send_problem(proto, record, problem)
