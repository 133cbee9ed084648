"""Bodies: reading a request's body within ``--max-body-bytes``, decoded.

A declared ``Content-Length`` over the limit is refused before any byte is read; a body
without one (chunked, or HTTP/2) is read and counted, and refused as soon as it passes
the limit. A body with a ``Content-Encoding`` of gzip, deflate, br or zstd (or a list
of them, applied in that order) is decoded as it arrives, and the limit applies to it
both as sent and as decoded: decoding stops as soon as the decoded body passes the
limit, so that a small bomb is refused after reading little, in little memory. A
corrupt or truncated stream is a 400 that names its coding, and any other coding is a
415 whose ``Accept-Encoding`` lists those echod decodes (RFC 9110 section 15.5.16). A
body of no bytes at all is empty, whatever coding it claims.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from echod.http.codings import CODINGS, decoder
from echod.http.problems import BadRequest, PayloadTooLarge, UnsupportedMediaType
from echod.telemetry.metric_layout import DECODED

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from granian.rsgi import Headers, HTTPProtocol  # type: ignore[attr-defined]

    from echod.http.codings import Decoder

__all__ = ["ACCEPTED", "MAX_CODINGS", "BodyReader", "Decoded"]

#: The codings echod decodes, as a 415 lists them in ``Accept-Encoding``.
ACCEPTED = ", ".join(CODINGS)
#: The most codings one body may be in, one after the other.
MAX_CODINGS = 4


class Decoded(bytes):
    """A body that arrived encoded, decoded; it remembers what arrived."""

    #: The codings, in the order they were applied (as ``Content-Encoding`` lists them).
    codings: tuple[str, ...]
    #: The size of the body as it arrived, in bytes.
    received: int
    #: The SHA-256 of the body as it arrived, in hexadecimal.
    received_sha256: str


class BodyReader:
    """Reads request bodies of at most ``max_bytes`` bytes, sent and decoded."""

    __slots__ = ("_count", "_max_bytes")

    def __init__(
        self, max_bytes: int, count: Callable[[int, str], None] = lambda _d, _c: None
    ) -> None:
        """Read bodies up to ``max_bytes`` (``--max-body-bytes``).

        ``count`` is told of each coding a body is decoded from
        (:meth:`echod.telemetry.metric_layout.Recorder.coding`).
        """
        self._max_bytes = max_bytes
        self._count = count

    def read(self, headers: Headers, proto: HTTPProtocol) -> Awaitable[bytes]:
        """Check what the headers say of the body; return what reads it.

        Raises:
            UnsupportedMediaType: the body is in a coding echod does not decode (415).
            BadRequest: ``Content-Length`` is not a number (400); the awaitable raises it
                too when an encoded body is corrupt or truncated.
            PayloadTooLarge: ``Content-Length`` is over the limit (413); the awaitable
                raises it too once a body passes the limit, as sent or decoded.
        """
        encoding = headers.get("content-encoding")
        if encoding is not None and encoding.lower() != "identity":
            return self._read_encoded(headers, proto)
        length = headers.get("content-length")
        if length is None:  # chunked, or HTTP/2
            return self._read_counting(proto)
        # The server refuses most malformed lengths before echod sees them; this is the net.
        if not length.isdigit():
            raise BadRequest(f"Content-Length {length!r} is not a number of bytes")
        if int(length) > self._max_bytes:
            raise self._too_large()
        return proto()

    def _read_encoded(self, headers: Headers, proto: HTTPProtocol) -> Awaitable[bytes]:
        codings = self._codings(headers.get_all("content-encoding"))  # type: ignore[attr-defined]
        length = headers.get("content-length")
        if length is not None:
            self._check_length(length)
        if codings:
            return self._read_decoding(proto, codings)
        return self._read_counting(proto) if length is None else proto()

    def _check_length(self, length: str) -> None:
        # The server refuses most malformed lengths before echod sees them; this is the net.
        if not length.isdigit():
            raise BadRequest(f"Content-Length {length!r} is not a number of bytes")
        if int(length) > self._max_bytes:
            raise self._too_large()

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

    async def _read_counting(self, proto: HTTPProtocol) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in proto:
            size += len(chunk)
            if size > self._max_bytes:
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    async def _read_decoding(self, proto: HTTPProtocol, codings: tuple[str, ...]) -> Decoded:
        """Read and decode as the body arrives: the last coding applied is undone first."""
        stages: list[Decoder] = [decoder(coding, self._max_bytes) for coding in reversed(codings)]
        decoded: list[bytes] = []
        size = 0
        digest = hashlib.sha256()
        async for chunk in proto:
            size += len(chunk)
            if size > self._max_bytes:
                raise self._too_large()
            digest.update(chunk)
            for stage in stages:
                chunk = stage.decode(chunk)  # noqa: PLW2901 - each stage's output feeds the next
            decoded.append(chunk)
        if size:  # no byte at all is an empty body, whatever it claims to be in
            for stage in stages:
                stage.end()
        body = Decoded(b"".join(decoded))
        body.codings, body.received, body.received_sha256 = codings, size, digest.hexdigest()
        for coding in codings:
            self._count(DECODED, coding)
        return body

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the body is over the limit of {self._max_bytes} bytes")
