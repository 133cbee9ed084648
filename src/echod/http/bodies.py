"""Bodies: reading a request's body within ``--max-body-bytes``, unencoded.

A declared ``Content-Length`` over the limit is refused before any byte is read; a body
without one (chunked, or HTTP/2) is read and counted, and refused as soon as it passes
the limit. A ``Content-Encoding`` other than ``identity`` is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from echod.http.problems import BadRequest, PayloadTooLarge, UnsupportedMediaType

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from granian.rsgi import Headers, HTTPProtocol  # type: ignore[attr-defined]

__all__ = ["BodyReader"]


class BodyReader:
    """Reads request bodies of at most ``max_bytes`` bytes."""

    __slots__ = ("_max_bytes",)

    def __init__(self, max_bytes: int) -> None:
        """Read bodies up to ``max_bytes`` (``--max-body-bytes``)."""
        self._max_bytes = max_bytes

    def read(self, headers: Headers, proto: HTTPProtocol) -> Awaitable[bytes]:
        """Check what the headers say of the body; return what reads it.

        Raises:
            UnsupportedMediaType: the body is encoded (415).
            BadRequest: ``Content-Length`` is not a number (400).
            PayloadTooLarge: ``Content-Length`` is over the limit (413); the awaitable
                raises it too once a body without a length passes the limit.
        """
        encoding = headers.get("content-encoding")
        if encoding is not None and encoding.lower() != "identity":
            raise UnsupportedMediaType(
                f"Content-Encoding {encoding!r} is not supported; send the JSON unencoded"
            )
        length = headers.get("content-length")
        if length is None:  # chunked, or HTTP/2
            return self._read_counting(proto)
        # The server refuses most malformed lengths before echod sees them; this is the net.
        if not length.isdigit():
            raise BadRequest(f"Content-Length {length!r} is not a number of bytes")
        if int(length) > self._max_bytes:
            raise self._too_large()
        return proto()

    async def _read_counting(self, proto: HTTPProtocol) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in proto:
            size += len(chunk)
            if size > self._max_bytes:
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the body is over the limit of {self._max_bytes} bytes")
