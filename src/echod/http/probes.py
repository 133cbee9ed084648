"""Probes: ``/health``, ``/ready``, ``/metrics`` and ``/openapi.json``, answered before auth.

They are neither logged nor counted, and, but for the API document, never stored by a
cache (``Cache-Control: no-store``), so that a cache in front cannot keep ``/ready`` at
200 while echod drains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from echod.http.answers import JSON, NO_STORE, PROBLEM, problem_body, send
from echod.http.problems import ServiceUnavailable
from echod.telemetry.exposition import render

if TYPE_CHECKING:
    from collections.abc import Callable

    from granian.rsgi import HTTPProtocol, Scope  # type: ignore[attr-defined]

    from echod.telemetry.exposition import Registry
    from echod.telemetry.records import RequestRecord

__all__ = ["Probes"]

_HEALTHY = b'{"status":"ok"}\n'
_READY = b'{"status":"ready"}\n'
_VARY_ACCEPT = ("vary", "accept")
# The document changes only with echod's version: a cache may keep it a few minutes.
_DOCUMENT_CACHING = ("cache-control", "max-age=300")


class Probes:
    """The probe routes' handlers (see :data:`echod.http.app.Handler`)."""

    def __init__(self, *, registry: Registry, is_ready: Callable[[], bool], openapi: bytes) -> None:
        """Answer from ``registry``, the shared ready flag and the API document."""
        self._registry = registry
        self._is_ready = is_ready
        self._openapi = openapi

    def health(self, scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes) -> None:
        """``/health``: 200 while the process serves."""
        send(
            proto,
            scope.method,
            200,
            [JSON, NO_STORE, ("x-request-id", record.request_id)],
            _HEALTHY,
        )

    def ready(self, scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes) -> None:
        """``/ready``: 200, or 503 once the instance drains."""
        if self._is_ready():
            send(
                proto,
                scope.method,
                200,
                [JSON, NO_STORE, ("x-request-id", record.request_id)],
                _READY,
            )
            return
        problem = ServiceUnavailable("echod is shutting down")
        headers = [PROBLEM, NO_STORE, ("x-request-id", record.request_id), *problem.headers]
        send(
            proto, scope.method, 503, headers, problem_body(problem, scope.path, record.request_id)
        )

    def metrics(
        self, scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes
    ) -> None:
        """``/metrics``: the whole instance's metrics, in the format ``Accept`` asks for."""
        body, content_type = render(self._registry, scope.headers.get("accept"))
        headers = [
            ("content-type", content_type),
            NO_STORE,
            _VARY_ACCEPT,
            ("x-request-id", record.request_id),
        ]
        send(proto, scope.method, 200, headers, body)

    def openapi(
        self, scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes
    ) -> None:
        """``/openapi.json``: the OpenAPI document."""
        headers = [JSON, _DOCUMENT_CACHING, ("x-request-id", record.request_id)]
        send(proto, scope.method, 200, headers, self._openapi)
