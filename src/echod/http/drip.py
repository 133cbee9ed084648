"""Drip: ``/api/drip`` sends ``*`` bytes a piece at a time, to see who buffers and who times out.

``bytes`` (1 to :data:`MAX_BYTES`, default 10) go out in ``chunks`` pieces as equal as
whole bytes allow (1 to :data:`MAX_CHUNKS` and at most ``bytes``; default ``bytes``, or
10,000 if fewer), one every ``duration_ms`` / ``chunks`` milliseconds, the first after
``delay_ms`` (a number, or a range to pick in, as on ``/api/inspect``): the answer's
head is sent after the delay, and the answer ends ``duration_ms`` after the first piece.
``delay_ms`` and ``duration_ms`` together fit within ``--max-delay``. Each piece is
written out as soon as it is made: chunked over HTTP/1.1, DATA frames over HTTP/2, and
in a coding flushed piece by piece when ``Accept-Encoding`` asks for one. A drip holds
one of the process's places for long requests, ends early when echod drains, and is
logged once, at its end, with the pieces sent as ``events``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from echod.http.answers import CLIENT_GONE, NO_STORE, stamp
from echod.http.codings import encoder
from echod.http.controls import Bounds, Controls, delay_ms
from echod.http.faults import faults
from echod.http.negotiation import VARY, choose, forced
from echod.http.problems import BadRequest
from echod.telemetry.metric_layout import ENCODED

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from granian.rsgi import HTTPProtocol, Scope  # type: ignore[attr-defined]

    from echod.http.codings import Encoder
    from echod.http.drain import Drain
    from echod.telemetry.records import RequestRecord

__all__ = ["DEFAULT_BYTES", "DEFAULT_DURATION_MS", "MAX_BYTES", "MAX_CHUNKS", "Drips"]

#: The most bytes one drip may send: 10 MiB.
MAX_BYTES = 10 * 1024 * 1024
#: The most pieces.
MAX_CHUNKS = 10_000
#: Bytes sent when ``bytes`` is not given.
DEFAULT_BYTES = 10
#: Milliseconds the pieces are spread over when ``duration_ms`` is not given (or
#: ``--max-delay``, if shorter).
DEFAULT_DURATION_MS = 2000
_OCTETS = ("content-type", "application/octet-stream")
_STATUSES = Bounds(200, 200)


class Drips:
    """The handler of ``/api/drip`` (see :data:`echod.http.app.Handler`)."""

    def __init__(
        self,
        *,
        max_delay: float,
        drain: Drain,
        count: Callable[[int, str], None] = lambda _d, _c: None,
    ) -> None:
        """Let a drip last up to ``max_delay`` seconds; end it when echod drains."""
        self._delay = delay_ms(max_delay)
        self._drain = drain
        self._count = count

    def __call__(
        self, scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes
    ) -> Coroutine[Any, Any, None] | None:
        """Check the drip asked for, then drip (a coroutine), or answer HEAD at once."""
        controls = Controls(scope)
        size = controls.integer("bytes", Bounds(1, MAX_BYTES)) or DEFAULT_BYTES
        chunks = controls.integer("chunks", Bounds(1, MAX_CHUNKS)) or min(size, MAX_CHUNKS)
        if chunks > size:
            raise BadRequest(f"chunks={chunks} is more pieces than the {size} bytes can make")
        duration = controls.integer("duration_ms", self._delay)
        duration = min(DEFAULT_DURATION_MS, self._delay.high) if duration is None else duration
        picked = faults(controls, _STATUSES, self._delay)
        if picked.delay[1] + duration > self._delay.high:
            raise BadRequest(
                f"delay_ms up to {picked.delay[1]} and duration_ms={duration} take longer than "
                f"the longest delay of {self._delay.high} ms (--max-delay)"
            )
        coding = choose(scope.headers.get("accept-encoding"), size, forced(controls))
        _, wait, chosen = picked.choose()
        answer = [_OCTETS, NO_STORE, VARY]
        if coding is not None:
            answer.append(("content-encoding", coding))
        if chosen is not None:
            answer.append(chosen)
        record.events = 0
        if scope.method == "HEAD":
            proto.response_empty(200, stamp(record, 200, answer))
            return None
        if coding is not None:
            self._count(ENCODED, coding)
        plan = (size, chunks, wait, duration)
        return self._drip(proto, record, answer, plan, None if coding is None else encoder(coding))

    async def _drip(
        self,
        proto: HTTPProtocol,
        record: RequestRecord,
        answer: list[tuple[str, str]],
        plan: tuple[int, int, int, int],
        stream: Encoder | None,
    ) -> None:
        """Wait, send the head, then the pieces on time; the record lasts to the end."""
        size, chunks, wait, duration = plan
        with self._drain.holding():
            if wait and await self._drain.sleep(wait / 1000, record.server):
                chunks = 0  # echod drains during the delay: the head, and no piece
            await self._send(proto, record, answer, size, chunks, duration, stream)
        record.duration_ms = (time.perf_counter() - record.started) * 1000.0

    async def _send(
        self,
        proto: HTTPProtocol,
        record: RequestRecord,
        answer: list[tuple[str, str]],
        size: int,
        chunks: int,
        duration: int,
        stream: Encoder | None,
    ) -> None:
        """Send the head, then ``chunks`` pieces of ``size`` bytes in all, over ``duration``."""
        transport = proto.response_stream(200, stamp(record, 200, answer))
        step = duration / 1000 / max(chunks, 1)
        begun = time.monotonic()
        longer = size % max(chunks, 1)  # the first pieces are a byte longer when it does not divide
        try:
            for index in range(chunks):
                piece = b"*" * (size // chunks + (index < longer))
                await transport.send_bytes(
                    piece if stream is None else stream.encode(piece, flush=True)
                )
                record.events = index + 1
                pause = begun + step * (index + 1) - time.monotonic()
                if pause > 0 and await self._drain.sleep(pause, record.server):
                    break  # echod drains: end the drip now, cleanly
            if stream is not None:  # a whole stream, even when cut short
                await transport.send_bytes(stream.finish())
        except (ProtocolClosed, ProtocolError):
            record.status = CLIENT_GONE
            record.detail = "the client left the drip"
