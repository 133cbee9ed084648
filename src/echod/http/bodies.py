"""Bodies: reading a request's body within ``--max-body-bytes`` and ``--body-timeout``, decoded.

A declared ``Content-Length`` over the limit is refused before any byte is read; a body
without one (chunked, or HTTP/2) is read and counted, and refused as soon as it passes
the limit. A body must arrive whole within ``--body-timeout`` of the request's arrival
(:class:`BodyDeadlines`): a client that sends it too slowly, one byte at a time, gets a
408 and its connection closes.

A body with a ``Content-Encoding`` of gzip, deflate, br or zstd (or a list of them,
applied in that order) is decoded as it arrives, and the limit applies to it both as
sent and as decoded: decoding stops as soon as the decoded body passes the limit, so
that a small bomb is refused after reading little, in little memory. A corrupt or
truncated stream is a 400 that names its coding, and any other coding is a 415 whose
``Accept-Encoding`` lists those echod decodes (RFC 9110 section 15.5.16). A body of no
bytes at all is empty, whatever coding it claims.

A request answered before its body was read whole (a 413, a 401, a 404...) has the rest
of its body read and dropped (:func:`discard`), at most :data:`DISCARD_BYTES` for at most
:data:`DISCARD_SECONDS`, before its connection may close: closing a socket with unread
bytes in it makes the kernel send a reset, which can reach a proxy in front before the
answer does, so that the proxy's client sees a disconnect or a 502 instead of the answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import TYPE_CHECKING

from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from echod.http.codings import CODINGS, decoder
from echod.http.problems import (
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from echod.telemetry.metric_layout import DECODED

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from granian.rsgi import Headers, HTTPProtocol  # type: ignore[attr-defined]

    from echod.http.codings import Decoder

__all__ = [
    "ACCEPTED",
    "DISCARD_BYTES",
    "DISCARD_SECONDS",
    "MAX_CODINGS",
    "BodyDeadlines",
    "BodyReader",
    "Decoded",
    "discard",
    "unread_body",
]

#: The codings echod decodes, as a 415 lists them in ``Accept-Encoding``.
ACCEPTED = ", ".join(CODINGS)
#: The most codings one body may be in, one after the other.
MAX_CODINGS = 4
#: The most bytes of an unread body read and dropped after its answer (:func:`discard`).
DISCARD_BYTES = 16 * 1024 * 1024
#: The longest time spent reading and dropping an unread body after its answer, in seconds.
DISCARD_SECONDS = 2.0
# Seconds between two looks at the bodies being read, at most.
_LOOK = 1.0


class Decoded(bytes):
    """A body that arrived encoded, decoded; it remembers what arrived."""

    #: The codings, in the order they were applied (as ``Content-Encoding`` lists them).
    codings: tuple[str, ...]
    #: The size of the body as it arrived, in bytes.
    received: int
    #: The SHA-256 of the body as it arrived, in hexadecimal.
    received_sha256: str


class BodyReader:
    """Reads request bodies of at most ``max_bytes`` bytes, within the deadlines' time."""

    __slots__ = ("_count", "_deadlines", "_max_bytes", "_reads")

    def __init__(
        self,
        max_bytes: int,
        deadlines: BodyDeadlines,
        count: Callable[[int, str], None] = lambda _d, _c: None,
    ) -> None:
        """Read bodies up to ``max_bytes`` (``--max-body-bytes``), in ``deadlines``' time.

        ``count`` is told of each coding a body is decoded from
        (:meth:`echod.telemetry.metric_layout.Recorder.coding`).
        """
        self._max_bytes = max_bytes
        self._deadlines = deadlines
        self._reads = deadlines.reads
        self._count = count

    def read(self, headers: Headers, proto: HTTPProtocol, started: float) -> Awaitable[bytes]:
        """Check what the headers say of the body; return what reads it.

        ``started`` is when the request arrived: the body must be in within
        ``--body-timeout`` of it. A body of declared length is read by granian's own
        future, which :class:`BodyDeadlines` watches (and cancels once overdue); the
        caller removes it from :attr:`BodyDeadlines.reads` once it is done.

        Raises:
            UnsupportedMediaType: the body is in a coding echod does not decode (415).
            BadRequest: ``Content-Length`` is not a number (400); the awaitable raises it
                too when an encoded body is corrupt or truncated.
            PayloadTooLarge: ``Content-Length`` is over the limit (413); the awaitable
                raises it too once a body passes the limit, as sent or decoded.
            RequestTimeout: (the awaitable of a body without a length, or an encoded
                one) it was too slow.
        """
        encoding = headers.get("content-encoding")
        if encoding is not None and encoding.lower() != "identity":
            return self._read_encoded(headers, proto, started)
        length = headers.get("content-length")
        if length is None:  # chunked, or HTTP/2
            return self._read_counting(proto, started)
        # The server refuses most malformed lengths before echod sees them; this is the net.
        if not length.isdigit():
            raise BadRequest(f"Content-Length {length!r} is not a number of bytes")
        if int(length) > self._max_bytes:
            raise self._too_large(int(length))
        reading = proto()
        self._reads[reading] = started
        return reading

    def _read_encoded(
        self, headers: Headers, proto: HTTPProtocol, started: float
    ) -> Awaitable[bytes]:
        codings = self._codings(headers.get_all("content-encoding"))  # type: ignore[attr-defined]
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise BadRequest(f"Content-Length {length!r} is not a number of bytes")
            if int(length) > self._max_bytes:
                raise self._too_large(int(length))
        if codings:
            return self._read_decoding(proto, started, codings)
        return self._read_counting(proto, started)

    @staticmethod
    def _codings(values: list[str]) -> tuple[str, ...]:
        """The codings ``Content-Encoding`` lists, identity left out."""
        codings = tuple(
            name
            for value in values
            for item in value.split(",")
            if (name := item.strip().lower()) not in {"identity", ""}
        )
        for coding in codings:
            if coding not in CODINGS:
                raise UnsupportedMediaType(
                    f"Content-Encoding {coding[:40]!r} is not one echod decodes ({ACCEPTED})",
                    ACCEPTED,
                )
        if len(codings) > MAX_CODINGS:
            raise UnsupportedMediaType(
                f"the body is in {len(codings)} codings; echod decodes at most {MAX_CODINGS}",
                ACCEPTED,
            )
        return codings

    async def _read_decoding(
        self, proto: HTTPProtocol, started: float, codings: tuple[str, ...]
    ) -> Decoded:
        """Read and decode as the body arrives: the last coding applied is undone first."""
        stages: list[Decoder] = [decoder(coding, self._max_bytes) for coding in reversed(codings)]
        decoded: list[bytes] = []
        size = 0
        digest = hashlib.sha256()
        left = self._deadlines.timeout - (time.perf_counter() - started)
        try:
            async with asyncio.timeout(left):
                async for chunk in proto:
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise self._too_large()
                    digest.update(chunk)
                    for stage in stages:
                        chunk = stage.decode(chunk)  # noqa: PLW2901 - each stage feeds the next
                    decoded.append(chunk)
        except TimeoutError:
            raise self._deadlines.overdue() from None
        if size:  # no byte at all is an empty body, whatever it claims to be in
            for stage in stages:
                stage.end()
        body = Decoded(b"".join(decoded))
        body.codings, body.received, body.received_sha256 = codings, size, digest.hexdigest()
        for coding in codings:
            self._count(DECODED, coding)
        return body

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

    def _too_large(self, declared: int = 0) -> PayloadTooLarge:
        """The 413; it closes the connection when the body is too long to be dropped whole."""
        return PayloadTooLarge(
            f"the body is over the limit of {self._max_bytes} bytes",
            (("connection", "close"),) if declared > DISCARD_BYTES else (),
        )


def unread_body(headers: Headers, http_version: str) -> bool:
    """Whether an HTTP/1 request announced a body (that was not read, if it was answered).

    Over HTTP/2 an unread body costs its stream only, never the connection.
    """
    if http_version == "2":
        return False
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


async def discard(
    proto: HTTPProtocol, max_bytes: int = DISCARD_BYTES, seconds: float = DISCARD_SECONDS
) -> int:
    """Read and drop what is left of a request's body, after its answer; return the bytes.

    At most ``max_bytes`` for at most ``seconds``: a client that sends more, or more
    slowly, has its connection closed with the rest unread. A body whose reading began
    (and stopped at a limit) is read on from where it stopped.
    """
    try:
        chunks: AsyncIterator[bytes] = proto.__aiter__()
    except (ProtocolError, ProtocolClosed):  # a read began: granian's protocol iterates itself
        chunks = proto  # type: ignore[assignment]
    size = 0
    try:
        async with asyncio.timeout(seconds):
            while size <= max_bytes:
                size += len(await anext(chunks))
    except (StopAsyncIteration, TimeoutError, ProtocolError, ProtocolClosed):
        pass
    return size


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
