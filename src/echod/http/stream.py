"""Stream: ``/api/stream`` sends Server-Sent Events, one at a time, to see who buffers them.

``count`` events (1 to :data:`MAX_EVENTS`, default 10), the first at once and each next
``interval_ms`` later (default 1,000), all within ``--max-delay``. Each event is
``id: <n>`` and ``data: {"seq": <n>, "time": "<RFC 3339 UTC>"}``, written to the
connection as soon as it is made: chunked over HTTP/1.1, DATA frames over HTTP/2, with
no ``Content-Length``. A proxy that buffers shows up as events arriving together. A
client that leaves stops the stream (logged as 499); a drain ends it early and cleanly.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from echod.http.answers import CLIENT_GONE, NO_STORE, stamp
from echod.http.controls import Bounds, control, delay_ms, query_args
from echod.http.problems import BadRequest
from echod.telemetry.log_line import Rfc3339Clock

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from granian.rsgi import HTTPProtocol, Scope  # type: ignore[attr-defined]

    from echod.http.drain import Drain
    from echod.telemetry.records import RequestRecord

__all__ = ["DEFAULT_EVENTS", "DEFAULT_INTERVAL_MS", "MAX_EVENTS", "Streams"]

#: The most events one stream may ask for.
MAX_EVENTS = 1000
#: Events sent when ``count`` is not given.
DEFAULT_EVENTS = 10
#: Milliseconds between two events when ``interval_ms`` is not given.
DEFAULT_INTERVAL_MS = 1000
_EVENT_STREAM = ("content-type", "text/event-stream")


class Streams:
    """The handler of ``/api/stream`` (see :data:`echod.http.app.Handler`)."""

    def __init__(self, *, max_delay: float, drain: Drain) -> None:
        """Let a stream last up to ``max_delay`` seconds, and end it when echod drains."""
        self._interval = delay_ms(max_delay)
        self._drain = drain
        self._clock = Rfc3339Clock()

    def __call__(
        self, scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes
    ) -> Coroutine[Any, Any, None] | None:
        """Check the request's pace, then stream (a coroutine), or answer HEAD at once."""
        args = query_args(scope.query_string)
        count = control(args, "count", Bounds(1, MAX_EVENTS)) or DEFAULT_EVENTS
        interval = control(args, "interval_ms", self._interval)
        interval = DEFAULT_INTERVAL_MS if interval is None else interval
        if (count - 1) * interval > self._interval.high:
            raise BadRequest(
                f"{count} events {interval} ms apart take {(count - 1) * interval} ms, "
                f"over the longest delay of {self._interval.high} ms (--max-delay)"
            )
        headers = stamp(record, 200, [_EVENT_STREAM, NO_STORE])
        record.events = 0
        if scope.method == "HEAD":
            proto.response_empty(200, headers)
            return None
        return self._stream(proto, headers, record, count, interval, record.server)

    async def _stream(
        self,
        proto: HTTPProtocol,
        headers: list[tuple[str, str]],
        record: RequestRecord,
        count: int,
        interval: int,
        listener: str,
    ) -> None:
        """Send the events; the record's duration is the whole stream's, its head's the header's."""
        transport = proto.response_stream(200, headers)
        try:
            for seq in range(1, count + 1):
                if seq > 1 and await self._drain.sleep(interval / 1000, listener):
                    break  # echod drains: end the stream now, cleanly
                now = self._clock.format(time.time())
                await transport.send_bytes(
                    f'id: {seq}\ndata: {{"seq":{seq},"time":"{now}"}}\n\n'.encode()
                )
                record.events = seq
        except (ProtocolClosed, ProtocolError):
            record.status = CLIENT_GONE
            record.detail = "the client left the stream"
        record.duration_ms = (time.perf_counter() - record.started) * 1000.0
