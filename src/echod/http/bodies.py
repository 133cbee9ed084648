"""Bodies: reading a request's body within ``--max-body-bytes`` and ``--body-timeout``.

A declared ``Content-Length`` over the limit is refused before any byte is read; a body
without one (chunked, or HTTP/2) is read and counted, and refused as soon as it passes
the limit. A ``Content-Encoding`` other than ``identity`` is refused. A body must arrive
whole within ``--body-timeout`` of the request's arrival (:class:`BodyDeadlines`): a
client that sends it too slowly, one byte at a time, gets a 408 and its connection closes.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from echod.http.problems import (
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from granian.rsgi import Headers, HTTPProtocol  # type: ignore[attr-defined]

__all__ = ["BodyDeadlines", "BodyReader"]
# Seconds between two looks at the bodies being read, at most.
_LOOK = 1.0


class BodyReader:
    """Reads request bodies of at most ``max_bytes`` bytes, within the deadlines' time."""

    __slots__ = ("_deadlines", "_max_bytes", "_reads")

    def __init__(self, max_bytes: int, deadlines: BodyDeadlines) -> None:
        """Read bodies up to ``max_bytes`` (``--max-body-bytes``), in ``deadlines``' time."""
        self._max_bytes = max_bytes
        self._deadlines = deadlines
        self._reads = deadlines.reads

    def read(self, headers: Headers, proto: HTTPProtocol, started: float) -> Awaitable[bytes]:
        """Check what the headers say of the body; return what reads it.

        ``started`` is when the request arrived: the body must be in within
        ``--body-timeout`` of it. A body of declared length is read by granian's own
        future, which :class:`BodyDeadlines` watches (and cancels once overdue); the
        caller removes it from :attr:`BodyDeadlines.reads` once it is done.

        Raises:
            UnsupportedMediaType: the body is encoded (415).
            BadRequest: ``Content-Length`` is not a number (400).
            PayloadTooLarge: ``Content-Length`` is over the limit (413); the awaitable
                raises it too once a body without a length passes the limit.
            RequestTimeout: (the awaitable of a body without a length) it was too slow.
        """
        encoding = headers.get("content-encoding")
        if encoding is not None and encoding.lower() != "identity":
            raise UnsupportedMediaType(
                f"Content-Encoding {encoding!r} is not supported; send the JSON unencoded"
            )
        length = headers.get("content-length")
        if length is None:  # chunked, or HTTP/2
            return self._read_counting(proto, started)
        # The server refuses most malformed lengths before echod sees them; this is the net.
        if not length.isdigit():
            raise BadRequest(f"Content-Length {length!r} is not a number of bytes")
        if int(length) > self._max_bytes:
            raise self._too_large()
        reading = proto()
        self._reads[reading] = started
        return reading

    async def _read_counting(self, proto: HTTPProtocol, started: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        left = self._deadlines.timeout - (time.perf_counter() - started)
        try:
            async with asyncio.timeout(left):
                async for chunk in proto:
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise self._too_large()
                    chunks.append(chunk)
        except TimeoutError:
            raise self._deadlines.overdue() from None
        return b"".join(chunks)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the body is over the limit of {self._max_bytes} bytes")


class BodyDeadlines:
    """Ends the body reads that run past ``--body-timeout``: one watch for the whole process.

    A body of declared length is read through granian's future, which :class:`BodyReader`
    puts in :attr:`reads` with its request's arrival time; a task that looks at them a
    few times a timeout cancels those overdue, and the cancelled read becomes a 408
    (:meth:`ended`). A timer per request would cost more than the request.
    """

    def __init__(self, timeout: float) -> None:
        """End reads that take more than ``timeout`` seconds from the request's arrival."""
        self.timeout = timeout
        #: Each read under way, and when its request arrived (``time.perf_counter``).
        self.reads: dict[object, float] = {}
        self._cancelled: set[object] = set()

    def ended(self, reading: object) -> RequestTimeout | None:
        """The 408 to answer when ``reading`` was cancelled as overdue, or None."""
        if reading not in self._cancelled:
            return None
        self._cancelled.discard(reading)
        return self.overdue()

    def overdue(self) -> RequestTimeout:
        """The 408 of a body that did not arrive in time."""
        return RequestTimeout(f"the body did not arrive within {self.timeout:g} s (--body-timeout)")

    async def watch(self) -> None:
        """Look at the reads as long as the process serves (a task of its own)."""
        look = min(_LOOK, self.timeout / 4)
        while True:
            await asyncio.sleep(look)
            overdue = time.perf_counter() - self.timeout
            for reading, arrived in list(self.reads.items()):
                if arrived < overdue:
                    del self.reads[reading]
                    self._cancelled.add(reading)
                    reading.cancel()  # type: ignore[attr-defined]
