"""Payload: the bytes of /api/bytes, a pure function of the seed and the offset."""

from __future__ import annotations

import hashlib

import pytest

from echod.http.payload import BLOCK, block, pieces


def whole(seed: int, start: int, end: int) -> bytes:
    """The bytes from ``start`` to ``end`` of ``seed``, joined."""
    return b"".join(pieces(seed, start, end))


class TestPieces:
    def test_the_bytes_are_fixed_by_the_standard(self) -> None:
        """SHAKE-128 of "echod bytes 0 0": the same on every machine, forever."""
        assert block(0, 0)[:8] == hashlib.shake_128(b"echod bytes 0 0").digest(8)
        assert len(block(7, 3)) == BLOCK

    def test_any_slice_is_the_slice_of_the_whole(self) -> None:
        """A range made alone equals that part of the whole, across block boundaries."""
        everything = whole(5, 0, 3 * BLOCK + 17)
        for start, end in [
            (0, 1),
            (BLOCK - 3, BLOCK + 3),
            (100, 2 * BLOCK + 5),
            (3 * BLOCK, 3 * BLOCK + 17),
        ]:
            assert whole(5, start, end) == everything[start:end]

    def test_no_piece_is_longer_than_a_block(self) -> None:
        """What is sent at a time stays small, however long the answer."""
        assert max(len(piece) for piece in pieces(0, 10, 5 * BLOCK)) <= BLOCK

    @pytest.mark.parametrize("end", [0, 1])
    def test_short_and_empty(self, end: int) -> None:
        """Nothing, and one byte."""
        assert len(whole(0, 0, end)) == end

    def test_seeds_differ(self) -> None:
        """Each seed has bytes of its own."""
        assert whole(0, 0, 64) != whole(1, 0, 64)
