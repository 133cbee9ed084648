"""Stream: ``/api/stream`` sends Server-Sent Events, one at a time, to see who buffers them.

``count`` events (1 to :data:`MAX_EVENTS`, default 10), the first at once and each next
``interval_ms`` later (default 1,000), all within ``--max-delay``; each control may also
be its header (``X-Echod-Count``, ``X-Echod-Interval-Ms``). The first event starts with
``retry: <ms>`` (:data:`RETRY_MS`, how long a client waits before it reconnects); each
event is ``id: <n>`` and ``data: {"seq": <n>, "time": "<RFC 3339 UTC>"}``, written
to the connection as soon as it is made: chunked over HTTP/1.1, DATA frames over HTTP/2,
with no ``Content-Length``. A proxy that buffers shows up as events arriving together;
the answer says ``X-Accel-Buffering: no``, which tells nginx not to buffer it.

A client that reconnects with ``Last-Event-ID: <n>`` gets the events after n, up to
``count`` (and 204, which tells ``EventSource`` to stop, when none is left). A client
that leaves stops the stream (logged as 499). A drain or a reload ends it early, after a
whole event, with ``event: shutdown`` (its data names the last id sent), so that a
stream cut short never looks complete. A stream holds one of the process's places for
long requests while it runs (:meth:`echod.http.drain.Drain.holding`).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from echod.http.answers import CLIENT_GONE, NO_STORE, stamp
from echod.http.controls import Bounds, Controls, delay_ms
from echod.http.problems import BadRequest
from echod.telemetry.log_line import Rfc3339Clock

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from granian.rsgi import HTTPProtocol, Scope  # type: ignore[attr-defined]

    from echod.http.drain import Drain
    from echod.telemetry.records import RequestRecord

__all__ = ["DEFAULT_EVENTS", "DEFAULT_INTERVAL_MS", "MAX_EVENTS", "RETRY_MS", "Streams"]

#: The most events one stream may ask for.
MAX_EVENTS = 1000
#: Events sent when ``count`` is not given.
DEFAULT_EVENTS = 10
#: Milliseconds between two events when ``interval_ms`` is not given.
DEFAULT_INTERVAL_MS = 1000
#: Milliseconds a client waits before it reconnects, as the stream's first line says.
RETRY_MS = 1000
_EVENT_STREAM = ("content-type", "text/event-stream")
#: nginx buffers an upstream's answer unless told otherwise; this tells it not to.
_UNBUFFERED = ("x-accel-buffering", "no")
# The most digits of a Last-Event-ID that echod sent (its ids are 1 to MAX_EVENTS).
_ID = re.compile(r"[0-9]{1,9}")


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
        controls = Controls(scope)
        count = controls.integer("count", Bounds(1, MAX_EVENTS)) or DEFAULT_EVENTS
        interval = controls.integer("interval_ms", self._interval)
        interval = DEFAULT_INTERVAL_MS if interval is None else interval
        if (count - 1) * interval > self._interval.high:
            raise BadRequest(
                f"{count} events {interval} ms apart take {(count - 1) * interval} ms, "
                f"over the longest delay of {self._interval.high} ms (--max-delay)"
            )
        first = _resumed(scope.headers.get("last-event-id")) + 1
        record.events = 0
        if first > count:  # nothing left: 204 tells EventSource not to reconnect
            proto.response_empty(204, stamp(record, 204, [NO_STORE]))
            return None
        if scope.method == "HEAD":
            proto.response_empty(200, stamp(record, 200, [_EVENT_STREAM, NO_STORE, _UNBUFFERED]))
            return None
        return self._stream(proto, record, range(first, count + 1), interval)

    async def _stream(
        self,
        proto: HTTPProtocol,
        record: RequestRecord,
        ids: range,
        interval: int,
    ) -> None:
        """Send the events; the record's duration is the whole stream's, its head's the header's."""
        with self._drain.holding():
            await self._send(proto, record, ids, interval)
        record.duration_ms = (time.perf_counter() - record.started) * 1000.0

    async def _send(
        self, proto: HTTPProtocol, record: RequestRecord, ids: range, interval: int
    ) -> None:
        transport = proto.response_stream(
            200, stamp(record, 200, [_EVENT_STREAM, NO_STORE, _UNBUFFERED])
        )
        last = ids.start - 1
        retry = f"retry: {RETRY_MS}\n"  # in the first event, so that it arrives with it
        try:
            for seq in ids:
                if seq > ids.start and await self._drain.sleep(interval / 1000, record.server):
                    # echod drains, or this server is replaced: say so, after a whole event
                    await transport.send_bytes(
                        f'event: shutdown\ndata: {{"lastEventId":{last}}}\n\n'.encode()
                    )
                    break
                now = self._clock.format(time.time())
                await transport.send_bytes(
                    f'{retry}id: {seq}\ndata: {{"seq":{seq},"time":"{now}"}}\n\n'.encode()
                )
                retry = ""
                record.events = seq - ids.start + 1
                last = seq
        except (ProtocolClosed, ProtocolError):
            record.status = CLIENT_GONE
            record.detail = "the client left the stream"


def _resumed(last_event_id: str | None) -> int:
    """The id a reconnecting client got last (``Last-Event-ID``), or 0 for a new stream.

    Raises:
        BadRequest: it is not an id that echod sends (a whole number).
    """
    if last_event_id is None or last_event_id == "":
        return 0
    if not _ID.fullmatch(last_event_id):
        raise BadRequest(
            f"Last-Event-ID {last_event_id[:40]!r} is not an id of this stream (a whole number)"
        )
    return int(last_event_id)
