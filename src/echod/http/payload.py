"""Payload: the bytes of ``/api/bytes/{n}``, a pure function of their offset and a seed.

Block ``i`` of a seed is the first :data:`BLOCK` bytes of SHAKE-128 (FIPS 202) of
``echod bytes <seed> <i>``: the same bytes from any instance, on any machine, any
Python, and from any offset without making those before it, so that a range costs no
more than its own length. The first ``k`` bytes of ``n`` are those of any longer ``n``.
They look random, so no coding makes them smaller: that is what a download test wants.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["BLOCK", "block", "pieces"]

#: The bytes made at a time, and the most a piece holds.
BLOCK = 64 * 1024


def block(seed: int, index: int) -> bytes:
    """Block ``index`` of ``seed``: the bytes from ``index * BLOCK`` on."""
    return hashlib.shake_128(b"echod bytes %d %d" % (seed, index)).digest(BLOCK)


def pieces(seed: int, start: int, end: int) -> Iterator[bytes]:
    """The bytes of ``seed`` from ``start`` up to ``end`` (excluded), at most a block at a time."""
    index, skip = divmod(start, BLOCK)
    while start < end:
        piece = block(seed, index)[skip : skip + end - start]
        yield piece
        start += len(piece)
        index, skip = index + 1, 0
