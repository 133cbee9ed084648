"""Echoes: the handlers of ``/api/echo`` and ``/api/raw`` (see :data:`echod.http.app.Handler`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from echod.http.answers import JSON, NO_STORE, stamp
from echod.http.echo import echo

if TYPE_CHECKING:
    from granian.rsgi import HTTPProtocol, Scope  # type: ignore[attr-defined]

    from echod.telemetry.records import RequestRecord

__all__ = ["echo_json", "echo_raw"]


def echo_json(scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes) -> None:
    """``POST``/``PUT /api/echo``: the JSON object with ``"echoed": true``."""
    echoed = echo(body) + b"\n"
    proto.response_bytes(200, stamp(record, 200, [JSON, NO_STORE]), echoed)


def echo_raw(scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes) -> None:
    """``POST``/``PUT /api/raw``: the body byte for byte, under the request's type."""
    content_type = scope.headers.get("content-type") or "application/octet-stream"
    proto.response_bytes(200, stamp(record, 200, [("content-type", content_type), NO_STORE]), body)
