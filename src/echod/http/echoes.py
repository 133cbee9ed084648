"""Echoes: the handlers of ``/api/echo`` and ``/api/raw`` (see :data:`echod.http.app.Handler`).

The echo is sent in the coding ``Accept-Encoding`` asks for, or ``encoding=`` forces
(:mod:`echod.http.negotiation`); the raw echo is sent as it came. A request without
either, the common case, takes the shortest way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from echod.http.answers import JSON, NO_STORE, stamp
from echod.http.controls import Controls
from echod.http.echo import echo
from echod.http.negotiation import VARY, encode_whole, forced
from echod.telemetry.metric_layout import ENCODED

if TYPE_CHECKING:
    from collections.abc import Callable

    from granian.rsgi import HTTPProtocol, Scope  # type: ignore[attr-defined]

    from echod.telemetry.records import RequestRecord

__all__ = ["Echoes"]


class Echoes:
    """The echo's handlers; ``count`` is told of each answer's coding."""

    __slots__ = ("_count",)

    def __init__(self, count: Callable[[int, str], None] = lambda _d, _c: None) -> None:
        """Tell ``count`` of each encoded answer (``Recorder.coding`` of the metrics)."""
        self._count = count

    def json(self, scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes) -> None:
        """``POST``/``PUT /api/echo``: the JSON object with ``"echoed": true``."""
        echoed = echo(body) + b"\n"
        headers = scope.headers
        accept = headers.get("accept-encoding")
        if accept is None and not scope.query_string and "x-echod-encoding" not in headers:
            proto.response_bytes(200, stamp(record, 200, [JSON, NO_STORE, VARY]), echoed)
            return
        coding, echoed = encode_whole(accept, echoed, forced(Controls(scope)))
        answer = [JSON, NO_STORE, VARY]
        if coding is not None:
            answer.append(("content-encoding", coding))
            self._count(ENCODED, coding)
        proto.response_bytes(200, stamp(record, 200, answer), echoed)

    @staticmethod
    def raw(scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes) -> None:
        """``POST``/``PUT /api/raw``: the body byte for byte, under the request's type."""
        content_type = scope.headers.get("content-type") or "application/octet-stream"
        proto.response_bytes(
            200, stamp(record, 200, [("content-type", content_type), NO_STORE]), body
        )
