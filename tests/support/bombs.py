"""Bombs: small bodies that decode to huge ones, in each coding echod reads, made quickly.

A gzip bomb of any size is one small member repeated (RFC 1952 allows many members),
and so is a zstd one (frames, RFC 8878); deflate and br hold one stream, made from
zeros a mebibyte at a time, so that making them never holds what they decode to.
"""

from __future__ import annotations

import gzip
import zlib

import brotli  # type: ignore[import-untyped]
from backports import zstd

__all__ = ["CODINGS", "MIB", "bomb", "encode"]

MIB = 1024 * 1024
#: The codings echod reads, as HTTP names them.
CODINGS = ("gzip", "deflate", "br", "zstd")
_ZEROS = bytes(MIB)


def encode(coding: str, data: bytes) -> bytes:
    """``data`` in ``coding``, as a client would send it."""
    if coding == "gzip":
        return gzip.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "br":
        return bytes(brotli.compress(data))
    return zstd.compress(data)


def bomb(coding: str, mebibytes: int) -> bytes:
    """A body in ``coding`` that decodes to ``mebibytes`` MiB of zeros."""
    if coding in {"gzip", "zstd"}:
        member = encode(coding, bytes(16 * MIB))
        whole, rest = divmod(mebibytes, 16)
        return member * whole + (encode(coding, bytes(rest * MIB)) if rest else b"")
    if coding == "deflate":
        writer = zlib.compressobj(9)
        return b"".join(writer.compress(_ZEROS) for _ in range(mebibytes)) + writer.flush()
    stream = brotli.Compressor(quality=5)
    return b"".join(stream.process(_ZEROS) for _ in range(mebibytes)) + bytes(stream.finish())
