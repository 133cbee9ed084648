"""/api/bytes/{n} through the app in this process: bytes, validators, ranges and codings."""

from __future__ import annotations

import gzip
import json
from typing import TYPE_CHECKING

import pytest

from echod.http.downloads import WHOLE_BYTES
from echod.http.payload import pieces

if TYPE_CHECKING:
    from tests.support.harness import Harness, MakeHarness, Response

BIG = 3 * WHOLE_BYTES + 5  # streamed through a pipe


def data(size: int, seed: int = 0) -> bytes:
    """What /api/bytes/size sends."""
    return b"".join(pieces(seed, 0, size))


def get(harness: Harness, path: str, method: str = "GET", **headers: str) -> Response:
    """The answer to one request."""
    return harness.authed(method, path, b"", **headers).response


class TestWhole:
    @pytest.mark.parametrize("size", [0, 1, 10, WHOLE_BYTES, WHOLE_BYTES + 1, BIG])
    def test_n_bytes_as_octets_with_their_validators(self, harness: Harness, size: int) -> None:
        """Made whole or streamed, the same bytes, with ETag and Accept-Ranges."""
        answer = get(harness, f"/api/bytes/{size}")
        assert (answer.status, answer.body) == (200, data(size))
        assert answer.header("content-type") == "application/octet-stream"
        assert answer.header("etag") == f'"bytes-{size}-0"'
        assert answer.header("accept-ranges") == "bytes"
        assert answer.header("vary") == "accept-encoding"

    def test_a_seed_gives_other_bytes_and_another_tag(self, harness: Harness) -> None:
        """seed= (or X-Echod-Seed) picks the bytes."""
        answer = get(harness, "/api/bytes/100?seed=7")
        assert answer.body == data(100, seed=7) != data(100)
        assert answer.header("etag") == '"bytes-100-7"'
        assert get(harness, "/api/bytes/100", **{"x-echod-seed": "7"}).body == answer.body

    @pytest.mark.parametrize("size", [10, BIG])
    def test_head_has_the_length_and_no_body(self, harness: Harness, size: int) -> None:
        """HEAD carries what GET would, but the bytes."""
        answer = get(harness, f"/api/bytes/{size}", "HEAD")
        assert (answer.status, answer.body) == (200, b"")
        assert answer.header("content-length") == str(size)

    @pytest.mark.parametrize("raw", ["abc", "-1", "1e3", "0x10", "101", "99999999999999"])
    def test_a_bad_n_is_a_400_naming_n(self, make_harness: MakeHarness, raw: str) -> None:
        """n is a whole number up to --max-download-bytes."""
        small = make_harness(max_download_bytes=100)
        answer = get(small, f"/api/bytes/{raw}")
        assert answer.status == 400
        assert json.loads(answer.body)["detail"].startswith("n=")
        assert get(small, "/api/bytes/100").status == 200

    def test_the_log_line_covers_the_whole_transfer(self, harness: Harness) -> None:
        """A download is counted, not timed, and logged once at its end."""
        get(harness, f"/api/bytes/{BIG}")
        harness.app._log.flush()
        [line] = harness.log_lines()
        assert (line["path"], line["status"]) == (f"/api/bytes/{BIG}", 200)
        assert harness.count("200", "GET", "/api/bytes/{n}") == 1.0


def test_a_streamed_download_to_a_cors_origin_carries_its_headers(
    make_harness: MakeHarness,
) -> None:
    """A download through a pipe is answered through the protocol CORS wraps, too."""
    cors = make_harness(cors_origins=("https://app.example",))
    answer = get(cors, f"/api/bytes/{BIG}", origin="https://app.example")
    assert (answer.status, answer.body) == (200, data(BIG))
    assert answer.header("access-control-allow-origin") == "https://app.example"


class TestConditional:
    def test_a_matching_tag_is_304(self, harness: Harness) -> None:
        """If-None-Match with the tag: no body, the tag and Vary again."""
        answer = get(harness, "/api/bytes/10", **{"if-none-match": '"bytes-10-0"'})
        assert (answer.status, answer.body) == (304, b"")
        assert answer.header("etag") == '"bytes-10-0"'
        assert answer.header("cache-control") == "no-store"

    def test_another_tag_is_the_whole_200(self, harness: Harness) -> None:
        """Another n or seed's tag does not match."""
        assert get(harness, "/api/bytes/10", **{"if-none-match": '"bytes-11-0"'}).status == 200

    def test_each_coding_has_its_own_tag(self, harness: Harness) -> None:
        """The identity tag does not stand for the gzip answer."""
        headers = {"if-none-match": '"bytes-1000-0"', "accept-encoding": "gzip"}
        answer = get(harness, "/api/bytes/1000", **headers)
        assert answer.status == 200
        assert answer.header("etag") == '"bytes-1000-0-gzip"'
        headers["if-none-match"] = '"bytes-1000-0-gzip"'
        assert get(harness, "/api/bytes/1000", **headers).status == 304


class TestRanges:
    @pytest.mark.parametrize(
        ("value", "first", "last"),
        [
            pytest.param("bytes=0-9", 0, 9, id="small"),
            pytest.param("bytes=-5", BIG - 5, BIG - 1, id="suffix"),
            pytest.param(f"bytes={WHOLE_BYTES - 1}-", WHOLE_BYTES - 1, BIG - 1, id="streamed"),
        ],
    )
    def test_one_range_is_206(self, harness: Harness, value: str, first: int, last: int) -> None:
        """Content-Range and the bytes of that part, identical to the whole's."""
        answer = get(harness, f"/api/bytes/{BIG}", range=value)
        assert answer.status == 206
        assert answer.header("content-range") == f"bytes {first}-{last}/{BIG}"
        assert answer.header("content-length") == str(last - first + 1)
        assert answer.body == data(BIG)[first : last + 1]

    def test_past_the_end_is_416(self, harness: Harness) -> None:
        """Content-Range: bytes */n, in a problem."""
        answer = get(harness, "/api/bytes/10", range="bytes=10-")
        assert answer.status == 416
        assert answer.header("content-range") == "bytes */10"
        assert answer.header("content-type") == "application/problem+json"

    def test_several_ranges_are_the_whole_body(self, harness: Harness) -> None:
        """RFC 9110 allows a server to ignore them: a plain 200."""
        answer = get(harness, "/api/bytes/10", range="bytes=0-1,4-5")
        assert (answer.status, answer.body) == (200, data(10))

    def test_if_range_with_the_tag_lets_the_range_through(self, harness: Harness) -> None:
        """The same strong tag: 206."""
        answer = get(harness, "/api/bytes/10", range="bytes=0-1", **{"if-range": '"bytes-10-0"'})
        assert answer.status == 206

    @pytest.mark.parametrize(
        "value", ['"bytes-10-1"', 'W/"bytes-10-0"', "Sat, 29 Nov 2026 18:05:00 GMT"]
    )
    def test_if_range_with_anything_else_is_the_whole_body(
        self, harness: Harness, value: str
    ) -> None:
        """Another tag, a weak one, or a date: 200 with everything."""
        answer = get(harness, "/api/bytes/10", range="bytes=0-1", **{"if-range": value})
        assert (answer.status, answer.body) == (200, data(10))

    def test_head_ignores_the_range(self, harness: Harness) -> None:
        """Range is defined for GET only."""
        answer = get(harness, "/api/bytes/10", "HEAD", range="bytes=0-1")
        assert (answer.status, answer.header("content-length")) == (200, "10")

    def test_a_range_skips_compression(self, harness: Harness) -> None:
        """A range counts the bytes themselves: the 206 is identity, with identity's tag."""
        answer = get(harness, "/api/bytes/1000", range="bytes=0-99", **{"accept-encoding": "gzip"})
        assert answer.status == 206
        assert "content-encoding" not in answer.headers
        assert answer.header("etag") == '"bytes-1000-0"'
        assert answer.body == data(1000)[:100]

    @pytest.mark.parametrize(
        ("query", "accept"),
        [("", "gzip, identity;q=0"), ("?encoding=gzip", "gzip")],
        ids=["identity-refused", "coding-forced"],
    )
    def test_when_identity_will_not_do_the_range_is_ignored(
        self, harness: Harness, query: str, accept: str
    ) -> None:
        """The whole body, encoded, with 200."""
        answer = get(
            harness, f"/api/bytes/1000{query}", range="bytes=0-99", **{"accept-encoding": accept}
        )
        assert (answer.status, answer.header("content-encoding")) == (200, "gzip")
        assert gzip.decompress(answer.body) == data(1000)


class TestCodings:
    @pytest.mark.parametrize("size", [1000, BIG])
    def test_gzip_whole_or_streamed(self, harness: Harness, size: int) -> None:
        """Encoded as asked; a streamed answer cannot say its length in advance."""
        answer = get(harness, f"/api/bytes/{size}", **{"accept-encoding": "gzip"})
        assert answer.header("content-encoding") == "gzip"
        assert gzip.decompress(answer.body) == data(size)
        if size > WHOLE_BYTES:
            assert "content-length" not in answer.headers

    def test_small_downloads_stay_identity(self, harness: Harness) -> None:
        """Under 256 bytes, unless forced."""
        assert (
            "content-encoding"
            not in get(harness, "/api/bytes/100", **{"accept-encoding": "gzip"}).headers
        )
        forced = get(harness, "/api/bytes/100?encoding=gzip")
        assert gzip.decompress(forced.body) == data(100)

    def test_nothing_acceptable_is_406(self, harness: Harness) -> None:
        """identity;q=0 and no coding taken."""
        assert get(harness, "/api/bytes/1000", **{"accept-encoding": "identity;q=0"}).status == 406
