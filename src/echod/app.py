"""App: the wiring. Every route, and the order of what runs for each request.

For each request, in order:

1. ``GET``/``HEAD`` of ``/health``, ``/ready``, ``/metrics`` or ``/openapi.json`` is
   answered at once, without auth, and is neither logged nor counted.
2. Anything else needs basic auth: 401 without good credentials.
3. ``POST``/``PUT /api/echo`` reads the body (413 over the limit) and echoes it; a known
   path with another method is 405, any other path 404.
4. The answer carries ``X-Request-ID`` and ``X-Response-Time``; then the request is
   logged and counted, once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from echod.auth import Authenticator
from echod.echo import echo
from echod.errors import (
    PROBLEM_CONTENT_TYPE,
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Problem,
    ServiceUnavailable,
    UnsupportedMediaType,
    render_problem,
)
from echod.logs import AccessLog
from echod.metrics import UNMATCHED_PATH, render
from echod.observe import Observer, RequestIds
from echod.openapi import openapi_document

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable, Mapping

    from granian.rsgi import Headers, HTTPProtocol, Scope  # type: ignore[attr-defined]
    from prometheus_client import CollectorRegistry

    from echod.config import Settings
    from echod.metrics import Recorder

__all__ = ["ECHO_PATH", "ROUTES", "EchoApp", "create_app"]

ECHO_PATH = "/api/echo"
#: Every path echod serves and the methods it serves it with.
ROUTES: dict[str, tuple[str, ...]] = {
    ECHO_PATH: ("POST", "PUT"),
    "/health": ("GET", "HEAD"),
    "/ready": ("GET", "HEAD"),
    "/metrics": ("GET", "HEAD"),
    "/openapi.json": ("GET", "HEAD"),
}
#: What the status of a request is recorded as when the client left before the answer.
CLIENT_GONE = 499

_JSON = ("content-type", "application/json")
_PROBLEM = ("content-type", PROBLEM_CONTENT_TYPE)


class EchoApp:
    """The RSGI application: routes each request and records it."""

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        access_log: AccessLog,
        observer: Observer,
        registry: CollectorRegistry,
        is_ready: Callable[[], bool],
        max_body_bytes: int,
        openapi: bytes,
    ) -> None:
        """Wire the parts together; :func:`create_app` builds them from settings."""
        self._auth = authenticator
        self._log = access_log
        self._observer = observer
        self._registry = registry
        self._is_ready = is_ready
        self._max_body = max_body_bytes
        self._openapi = openapi
        self._request_id = RequestIds()
        self._public: dict[str, Callable[[Scope, HTTPProtocol, str], None]] = {
            "/health": self._health,
            "/ready": self._ready,
            "/metrics": self._metrics,
            "/openapi.json": self._openapi_json,
        }

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start writing log lines from the worker's loop."""
        self._log.bind(loop)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write the last log lines and stop the hashing thread."""
        self._log.flush()
        self._log.bind(None)
        self._auth.close()

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        """Answer one request."""
        start = time.perf_counter()
        method = scope.method
        path = scope.path
        headers = scope.headers
        rid = self._request_id(headers.get("x-request-id"))
        public = self._public.get(path)
        if public is not None and (method == "GET" or method == "HEAD"):  # noqa: PLR1714
            public(scope, proto, rid)
            return
        user: str | None = None
        error: BaseException | None = None
        try:
            checked = self._auth.check(headers.get("authorization"))
            user = checked if type(checked) is str else await self._auth.verify(checked)  # type: ignore[arg-type]
            if path == ECHO_PATH and (method == "POST" or method == "PUT"):  # noqa: PLR1714
                body = echo(await self._body(headers, proto))
                duration_ms = (time.perf_counter() - start) * 1000.0
                status = 200
                proto.response_bytes(
                    200,
                    [_JSON, ("x-request-id", rid), ("x-response-time", f"{duration_ms:.3f}ms")],
                    body,
                )
            elif path in ROUTES:
                raise MethodNotAllowed(method, ROUTES[path])
            else:
                raise NotFound(f"no route matches the path {path!r}")
        except Problem as problem:
            status = problem.status
            duration_ms = self._problem(proto, problem, path, rid, start)
        except (ProtocolClosed, ProtocolError):  # the client left while sending the body
            status = CLIENT_GONE
            duration_ms = (time.perf_counter() - start) * 1000.0
        except Exception as exc:  # noqa: BLE001 - the edge: log it once, answer 500
            error = exc
            status = 500
            internal = Problem("an unexpected error occurred; it is logged under this request id")
            duration_ms = self._problem(proto, internal, path, rid, start)
        self._observer.record(
            method,
            path,
            path if path in ROUTES else UNMATCHED_PATH,
            scope.http_version,
            status,
            duration_ms,
            rid,
            user,
            scope.client,
            error,
        )

    def _body(self, headers: Headers, proto: HTTPProtocol) -> Awaitable[bytes]:
        """Check what the headers say of the body; return what reads it."""
        encoding = headers.get("content-encoding")
        if encoding is not None and encoding.lower() != "identity":
            raise UnsupportedMediaType(
                f"Content-Encoding {encoding!r} is not supported; send the JSON unencoded"
            )
        length = headers.get("content-length")
        if length is None:  # chunked, or HTTP/2
            return self._read_counting(proto)
        if _declared_length(length) > self._max_body:
            raise self._too_large()
        return proto()

    async def _read_counting(self, proto: HTTPProtocol) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in proto:
            size += len(chunk)
            if size > self._max_body:
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the body is over the limit of {self._max_body} bytes")

    def _problem(
        self, proto: HTTPProtocol, problem: Problem, path: str, rid: str, start: float
    ) -> float:
        body = render_problem(problem, path, rid)
        duration_ms = (time.perf_counter() - start) * 1000.0
        headers = self._headers(_PROBLEM, rid, duration_ms)
        headers.extend(problem.headers)
        proto.response_bytes(problem.status, headers, body)
        return duration_ms

    @staticmethod
    def _headers(
        content_type: tuple[str, str], rid: str, duration_ms: float
    ) -> list[tuple[str, str]]:
        return [content_type, ("x-request-id", rid), ("x-response-time", f"{duration_ms:.3f}ms")]

    def _health(self, scope: Scope, proto: HTTPProtocol, rid: str) -> None:  # noqa: ARG002
        proto.response_bytes(200, [_JSON, ("x-request-id", rid)], b'{"status":"ok"}')

    def _ready(self, scope: Scope, proto: HTTPProtocol, rid: str) -> None:
        if self._is_ready():
            proto.response_bytes(200, [_JSON, ("x-request-id", rid)], b'{"status":"ready"}')
            return
        problem = ServiceUnavailable("echod is shutting down")
        body = render_problem(problem, scope.path, rid)
        proto.response_bytes(503, [_PROBLEM, ("x-request-id", rid), *problem.headers], body)

    def _metrics(self, scope: Scope, proto: HTTPProtocol, rid: str) -> None:
        body, content_type = render(self._registry, scope.headers.get("accept"))
        proto.response_bytes(200, [("content-type", content_type), ("x-request-id", rid)], body)

    def _openapi_json(self, scope: Scope, proto: HTTPProtocol, rid: str) -> None:  # noqa: ARG002
        proto.response_bytes(200, [_JSON, ("x-request-id", rid)], self._openapi)


def _declared_length(value: str) -> int:
    # The server refuses most malformed lengths before echod sees them; this is the net.
    if not value.isdigit():
        raise BadRequest(f"Content-Length {value!r} is not a number of bytes")
    return int(value)


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
    return EchoApp(
        authenticator=Authenticator(users),
        access_log=access_log,
        observer=Observer(access_log, recorder),
        registry=registry,
        is_ready=is_ready,
        max_body_bytes=settings.max_body_bytes,
        openapi=openapi_document(),
    )
