"""Codings: each written and read by its field's library; bodies decoded within a limit."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import zlib

import brotli  # type: ignore[import-untyped]
import pytest
from backports import zstd

from echod.http.codings import CODINGS, compress, decoder, encoder
from echod.http.problems import BadRequest, PayloadTooLarge

TEXT = b'{"the": "quick brown fox"}' * 100
MIB = 1024 * 1024


def reference_decode(coding: str, data: bytes) -> bytes:
    """``data`` decoded by the library itself, not by echod."""
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "deflate":
        return zlib.decompress(data)
    if coding == "br":
        return bytes(brotli.decompress(data))
    return zstd.decompress(data)


def reference_encode(coding: str, data: bytes) -> bytes:
    """``data`` encoded by the library itself, as a client would send it."""
    if coding == "gzip":
        return gzip.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "br":
        return bytes(brotli.compress(data))
    return zstd.compress(data)


def decode_all(coding: str, data: bytes, limit: int = MIB, piece: int = 1000) -> bytes:
    """``data`` fed to echod's decoder ``piece`` bytes at a time, then ended."""
    stream = decoder(coding, limit)
    out = b"".join(stream.decode(data[i : i + piece]) for i in range(0, len(data), piece))
    stream.end()
    return out


@pytest.mark.parametrize("coding", CODINGS)
class TestEachCoding:
    def test_a_whole_answer_decodes_with_the_library(self, coding: str) -> None:
        """compress() writes what the library reads back, and smaller."""
        encoded = compress(coding, TEXT)
        assert reference_decode(coding, encoded) == TEXT
        assert len(encoded) < len(TEXT) // 10

    def test_a_whole_answer_is_the_same_every_time(self, coding: str) -> None:
        """The same body encodes to the same bytes, so that a strong ETag holds."""
        assert compress(coding, TEXT) == compress(coding, TEXT)

    def test_a_stream_decodes_piece_by_piece_when_flushed(self, coding: str) -> None:
        """Each flushed piece can be decoded before the stream ends."""
        stream = encoder(coding)
        reader = decoder(coding, MIB)
        for piece in (b"*" * 10, b"+" * 20, b"-" * 5):
            assert reader.decode(stream.encode(piece, flush=True)) == piece
        assert reader.decode(stream.finish()) == b""
        reader.end()

    def test_a_stream_is_the_library_s_format(self, coding: str) -> None:
        """An unflushed stream, finished, is a whole body the library reads."""
        stream = encoder(coding)
        encoded = stream.encode(TEXT[:1000]) + stream.encode(TEXT[1000:]) + stream.finish()
        assert reference_decode(coding, encoded) == TEXT

    @pytest.mark.parametrize("piece", [1, 7, 4096])
    def test_a_client_s_body_is_decoded_in_any_pieces(self, coding: str, piece: int) -> None:
        """However the body arrives, it decodes to what was encoded."""
        assert decode_all(coding, reference_encode(coding, TEXT), piece=piece) == TEXT

    def test_a_bomb_stops_at_the_limit(self, coding: str) -> None:
        """10 MB of zeros, sent in one piece, is refused once past 1 KiB, never inflated."""
        bomb = reference_encode(coding, bytes(10_000_000))
        stream = decoder(coding, 1024)
        with pytest.raises(PayloadTooLarge):
            stream.decode(bomb)

    def test_exactly_the_limit_is_allowed(self, coding: str) -> None:
        """The limit is inclusive."""
        assert decode_all(coding, reference_encode(coding, b"a" * 1024), limit=1024) == b"a" * 1024

    def test_a_truncated_stream_is_a_400_naming_the_coding(self, coding: str) -> None:
        """The stream ends before its end."""
        encoded = reference_encode(coding, TEXT)
        with pytest.raises(BadRequest, match=f"not valid {coding}"):
            decode_all(coding, encoded[: len(encoded) // 2])

    def test_an_empty_body_is_a_truncated_stream(self, coding: str) -> None:
        """No byte at all is not a stream of this coding."""
        with pytest.raises(BadRequest, match=f"not valid {coding}"):
            decode_all(coding, b"")

    def test_a_corrupt_stream_is_a_400_naming_the_coding(self, coding: str) -> None:
        """Bytes that are not this coding."""
        with pytest.raises(BadRequest, match=f"not valid {coding}"):
            decode_all(coding, b"this is not compressed at all" * 3)

    def test_garbage_after_the_end_is_a_400(self, coding: str) -> None:
        """Bytes after the stream's end are not a member of it."""
        with pytest.raises(BadRequest, match=f"not valid {coding}"):
            decode_all(coding, reference_encode(coding, TEXT) + b"trailing")


class TestMembers:
    def test_gzip_members_decode_to_their_concatenation(self) -> None:
        """RFC 1952: a gzip file may hold several members."""
        assert decode_all("gzip", gzip.compress(b"one ") + gzip.compress(b"two")) == b"one two"

    def test_zstd_frames_decode_to_their_concatenation(self) -> None:
        """RFC 8878: several frames, one after the other."""
        assert decode_all("zstd", zstd.compress(b"one ") + zstd.compress(b"two")) == b"one two"

    def test_raw_deflate_is_read_as_deflate(self) -> None:
        """Some clients send deflate without zlib's wrapper."""
        raw = zlib.compressobj(6, zlib.DEFLATED, -15)
        assert decode_all("deflate", raw.compress(TEXT) + raw.flush()) == TEXT

    def test_a_zstd_window_over_8_mib_is_refused(self) -> None:
        """A frame may not make echod reserve more than 8 MiB (RFC 8878 3.1.1.1.2)."""
        # A stream of unknown size keeps the window it was written with in its header.
        writer = zstd.ZstdCompressor(options={zstd.CompressionParameter.window_log: 24})
        wide = writer.compress(os.urandom(100)) + writer.flush()
        with pytest.raises(BadRequest, match="not valid zstd"):
            decode_all("zstd", wide)

    def test_a_zstd_window_of_8_mib_is_read(self) -> None:
        """The largest window allowed decodes."""
        writer = zstd.ZstdCompressor(options={zstd.CompressionParameter.window_log: 23})
        assert decode_all("zstd", writer.compress(TEXT) + writer.flush()) == TEXT


def test_brotli_and_zstd_are_loaded_only_when_used() -> None:
    """Building a worker's app and echoing loads neither; a br answer loads brotli alone."""
    code = (
        "import sys\n"
        "import echod.http.factory, echod.http.codings as c\n"
        "assert 'brotli' not in sys.modules and 'backports.zstd' not in sys.modules\n"
        "c.compress('gzip', b'x')\n"
        "assert 'brotli' not in sys.modules\n"
        "c.compress('br', b'x')\n"
        "assert 'brotli' in sys.modules and 'backports.zstd' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
