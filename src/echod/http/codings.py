"""Codings: the content codings echod reads and writes, each through its field's library.

gzip and deflate (RFC 9110 section 8.4.1) come from zlib; br (RFC 7932) from brotli and
zstd (RFC 8878) from ``compression.zstd``, or ``backports.zstd`` before Python 3.14.
brotli and zstd are imported when a request first needs them, so that a worker that
never meets them never loads them. An encoder writes one stream, flushed on demand so
that a piece reaches the client as it is sent; a decoder reads one body, never giving
more than the room it is left, so that a small bomb cannot grow in memory. A zstd
frame may ask for a window of at most 8 MiB, as RFC 8878 section 3.1.1.1.2 advises for
HTTP.
"""

from __future__ import annotations

import sys
import zlib
from typing import TYPE_CHECKING, Any, Protocol

from echod.http.problems import BadRequest, PayloadTooLarge
from echod.telemetry.metric_layout import CODINGS

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["CODINGS", "Decoder", "Encoder", "compress", "decoder", "encoder"]

#: zlib's level for gzip and deflate, brotli's quality and zstd's level: each about as
#: fast as the others, and much faster than brotli's default of 11.
GZIP_LEVEL = 6
BROTLI_QUALITY = 4
ZSTD_LEVEL = 3
#: The largest zstd window a body may ask for (2 ** 23 bytes: 8 MiB).
ZSTD_WINDOW_LOG = 23
# zlib's window bits: 15 for the zlib format (HTTP's deflate), + 16 for gzip, negative raw.
_WBITS = {"gzip": 31, "deflate": 15}


def _brotli() -> Any:  # noqa: ANN401 - brotli ships no types
    import brotli  # type: ignore[import-untyped]  # noqa: PLC0415 - loaded on first use

    return brotli


def _zstd() -> ModuleType:
    if sys.version_info >= (3, 14):
        from compression import zstd  # noqa: PLC0415 - loaded on first use
    else:
        from backports import zstd  # noqa: PLC0415

    return zstd


def compress(coding: str, data: bytes) -> bytes:
    """``data`` encoded whole in ``coding``, one of :data:`CODINGS`."""
    if coding in _WBITS:
        encoder = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _WBITS[coding])
        return encoder.compress(data) + encoder.flush()
    if coding == "br":
        return bytes(_brotli().compress(data, quality=BROTLI_QUALITY))
    return bytes(_zstd().compress(data, ZSTD_LEVEL))


class Encoder(Protocol):
    """One stream of one coding, written a piece at a time."""

    def encode(self, data: bytes, *, flush: bool = False) -> bytes:
        """``data`` encoded; with ``flush``, all of it, so that a client can decode it now."""
        ...

    def finish(self) -> bytes:
        """The end of the stream."""
        ...


class _ZlibEncoder:
    def __init__(self, coding: str) -> None:
        self._encoder = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _WBITS[coding])

    def encode(self, data: bytes, *, flush: bool = False) -> bytes:
        encoded = self._encoder.compress(data)
        return encoded + self._encoder.flush(zlib.Z_SYNC_FLUSH) if flush else encoded

    def finish(self) -> bytes:
        return self._encoder.flush()


class _BrotliEncoder:
    def __init__(self) -> None:
        self._encoder = _brotli().Compressor(quality=BROTLI_QUALITY)

    def encode(self, data: bytes, *, flush: bool = False) -> bytes:
        encoded: bytes = self._encoder.process(data)
        return encoded + self._encoder.flush() if flush else encoded

    def finish(self) -> bytes:
        return bytes(self._encoder.finish())


class _ZstdEncoder:
    def __init__(self) -> None:
        zstd = _zstd()
        self._encoder = zstd.ZstdCompressor(ZSTD_LEVEL)
        self._flush = zstd.ZstdCompressor.FLUSH_BLOCK

    def encode(self, data: bytes, *, flush: bool = False) -> bytes:
        return bytes(self._encoder.compress(data, self._flush if flush else 0))

    def finish(self) -> bytes:
        return bytes(self._encoder.flush())


def encoder(coding: str) -> Encoder:
    """A new stream in ``coding``, one of :data:`CODINGS`."""
    if coding in _WBITS:
        return _ZlibEncoder(coding)
    return _BrotliEncoder() if coding == "br" else _ZstdEncoder()


class Decoder:
    """One body's stream of one coding, decoded a piece at a time within a limit.

    gzip and zstd may hold several members (frames) one after the other, which decode
    to their concatenation; a deflate body may also be raw deflate, without zlib's
    wrapper, as some clients send it.

    Raises (from :meth:`decode` and :meth:`end`):
        PayloadTooLarge: the decoded stream is over the limit (413).
        BadRequest: the stream is corrupt or truncated (400, naming the coding).
    """

    def __init__(self, coding: str, limit: int) -> None:
        """Decode ``coding`` (one of :data:`CODINGS`) into at most ``limit`` bytes."""
        self.coding = coding
        self._limit = limit
        self._room = limit
        self._started = False
        self._state = self._new()

    def decode(self, data: bytes) -> bytes:
        """What ``data``, the stream's next bytes, decodes to."""
        out = []
        try:
            while data:
                piece, data = self._step(data)
                self._room -= len(piece)
                if self._room < 0:
                    raise PayloadTooLarge(
                        f"the body decodes to more than the limit of {self._limit} bytes"
                    )
                out.append(piece)
        except (zlib.error, EOFError, ValueError, _brotli_error(), _zstd_error()) as error:
            raise self._corrupt(error) from None
        return b"".join(out)

    def end(self) -> None:
        """Check that the stream ended where the body did."""
        if not self._finished():
            raise BadRequest(f"the body is not valid {self.coding}: the stream is truncated")

    def _new(self) -> Any:  # noqa: ANN401 - each library's decoder
        if self.coding in _WBITS:
            return zlib.decompressobj(_WBITS[self.coding])
        if self.coding == "br":
            return _brotli().Decompressor()
        zstd = _zstd()
        return zstd.ZstdDecompressor(
            options={zstd.DecompressionParameter.window_log_max: ZSTD_WINDOW_LOG}
        )

    def _step(self, data: bytes) -> tuple[bytes, bytes]:
        """Decode what fits in the room left; return it and the input still to decode."""
        state, room = self._state, self._room + 1  # one byte more shows the limit is passed
        if self.coding == "br":
            if state.is_finished():
                raise ValueError("data after the end of the stream")
            return bytes(state.process(data, output_buffer_limit=room)), b""
        if self._finished():  # a member (frame) ended: another must follow
            if self.coding == "deflate":
                raise ValueError("data after the end of the stream")
            self._state = state = self._new()
        if self.coding == "deflate" and not self._started:
            self._started = True
            try:
                return self._take(state.decompress(data, room), state)
            except zlib.error:  # not the zlib format: raw deflate, as some clients send
                self._state = state = zlib.decompressobj(-15)
        return self._take(state.decompress(data, room), state)

    @staticmethod
    def _take(piece: bytes, state: Any) -> tuple[bytes, bytes]:  # noqa: ANN401
        rest = getattr(state, "unconsumed_tail", b"") or b""
        return piece, rest + state.unused_data if state.eof else rest

    def _finished(self) -> bool:
        state = self._state
        return bool(state.is_finished() if self.coding == "br" else state.eof)

    def _corrupt(self, error: Exception) -> BadRequest:
        return BadRequest(f"the body is not valid {self.coding}: {error}")


def decoder(coding: str, limit: int) -> Decoder:
    """A decoder of one body in ``coding`` (one of :data:`CODINGS`), of ``limit`` bytes."""
    return Decoder(coding, limit)


def _brotli_error() -> type[Exception]:
    error: type[Exception] = sys.modules["brotli"].error if "brotli" in sys.modules else zlib.error
    return error


def _zstd_error() -> type[Exception]:
    for name in ("compression.zstd", "backports.zstd"):
        if name in sys.modules:
            found: type[Exception] = sys.modules[name].ZstdError
            return found
    return zlib.error
