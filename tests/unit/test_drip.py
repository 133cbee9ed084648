"""/api/drip through the app in this process: its pieces, its bounds, its codings."""

from __future__ import annotations

import gzip
import itertools
import json
import time
from typing import TYPE_CHECKING

import pytest

from echod.http.drain import MAX_DELAYED
from tests.support.harness import FakeProto
from tests.support.users import ALICE

if TYPE_CHECKING:
    from tests.support.harness import Harness, MakeHarness, StreamTransport


class Recording(FakeProto):
    """A protocol that notes when each piece was sent."""

    def __init__(self) -> None:
        """No body; pieces timed from now."""
        super().__init__()
        self.pieces: list[tuple[float, bytes]] = []

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> StreamTransport:
        """Record each piece with its time as it is added to the body."""
        transport = super().response_stream(status, headers)
        sent = transport.send_bytes

        async def send_bytes(data: bytes) -> None:
            self.pieces.append((time.monotonic(), data))
            await sent(data)

        transport.send_bytes = send_bytes  # type: ignore[method-assign]
        return transport


def drip(harness: Harness, query: str, **headers: str) -> Recording:
    """One drip, recorded."""
    proto = Recording()
    harness.request("GET", f"/api/drip?{query}", b"", {"authorization": ALICE, **headers}, proto)
    return proto


class TestDrip:
    def test_ten_stars_by_default(self, harness: Harness) -> None:
        """bytes=10 in 10 pieces, as octets, without a length."""
        proto = drip(harness, "duration_ms=0")
        answer = proto.response
        assert (answer.status, answer.body) == (200, b"*" * 10)
        assert [piece for _, piece in proto.pieces] == [b"*"] * 10
        assert answer.header("content-type") == "application/octet-stream"
        assert "content-length" not in answer.headers

    def test_pieces_are_as_equal_as_bytes_allow(self, harness: Harness) -> None:
        """10 bytes in 3 pieces: 4, 3 and 3."""
        proto = drip(harness, "bytes=10&chunks=3&duration_ms=0")
        assert [len(piece) for _, piece in proto.pieces] == [4, 3, 3]

    def test_pieces_are_spread_over_the_duration(self, harness: Harness) -> None:
        """4 pieces over 400 ms: 100 ms apart, after the delay; the drip lasts the whole."""
        started = time.monotonic()
        proto = drip(harness, "bytes=4&duration_ms=400&delay_ms=200")
        times = [at - started for at, _ in proto.pieces]
        assert 0.19 < times[0] < 0.3
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert all(0.07 < gap < 0.2 for gap in gaps), gaps
        assert time.monotonic() - started >= 0.6

    def test_a_delay_range_is_picked_and_said(self, harness: Harness) -> None:
        """delay_ms=0-5 with a seed, as on /api/inspect."""
        answer = drip(harness, "bytes=1&duration_ms=0&delay_ms=0-5&seed=1").response
        assert (answer.header("x-echod-chosen") or "").startswith("status=200; delay_ms=")

    def test_head_is_the_head_at_once(self, harness: Harness) -> None:
        """No delay, no pieces."""
        started = time.monotonic()
        answer = harness.authed("HEAD", "/api/drip?delay_ms=5000").response
        assert (answer.status, answer.body) == (200, b"")
        assert time.monotonic() - started < 1

    def test_gzip_pieces_are_flushed_one_by_one(self, harness: Harness) -> None:
        """Each encoded piece decodes as it comes, and the whole is one gzip stream."""
        proto = drip(harness, "bytes=1000&chunks=4&duration_ms=0", **{"accept-encoding": "gzip"})
        assert proto.response.header("content-encoding") == "gzip"
        assert gzip.decompress(proto.response.body) == b"*" * 1000
        assert len(proto.pieces) == 5  # four pieces and the stream's end

    def test_the_log_line_has_the_pieces_as_events(self, harness: Harness) -> None:
        """Logged once, at the end, not timed."""
        drip(harness, "bytes=3&duration_ms=0")
        harness.app._log.flush()
        [line] = harness.log_lines()
        assert (line["status"], line["events"]) == (200, 3)

    def test_a_drip_takes_a_place(self, harness: Harness) -> None:
        """With every place held, a drip is a 503 before its head."""
        harness.app._drain.held = MAX_DELAYED
        answer = drip(harness, "bytes=1&duration_ms=0").response
        assert (answer.status, answer.header("retry-after")) == (503, "1")

    def test_a_drain_ends_it_early(self, harness: Harness) -> None:
        """Once the instance drains, the drip stops after the piece it was sending."""
        harness.ready = False
        started = time.monotonic()
        proto = drip(harness, "bytes=100&duration_ms=5000")
        assert time.monotonic() - started < 2
        assert 1 <= len(proto.pieces) < 100


class TestBounds:
    @pytest.mark.parametrize(
        ("query", "named"),
        [
            pytest.param("bytes=0", "bytes", id="no-bytes"),
            pytest.param(f"bytes={10 * 1024 * 1024 + 1}", "bytes", id="over-10-mib"),
            pytest.param("chunks=0", "chunks", id="no-chunks"),
            pytest.param("bytes=20000&chunks=10001", "chunks", id="over-10000-chunks"),
            pytest.param("bytes=5&chunks=6", "chunks", id="more-chunks-than-bytes"),
            pytest.param("duration_ms=10001", "duration_ms", id="over-max-delay"),
            pytest.param("delay_ms=6000&duration_ms=5000", "--max-delay", id="together-too-long"),
            pytest.param("delay_ms=1-6000&duration_ms=5000", "--max-delay", id="range-too-long"),
            pytest.param("encoding=lzma", "encoding", id="bad-encoding"),
        ],
    )
    def test_a_bad_control_is_a_400_naming_it(
        self, harness: Harness, query: str, named: str
    ) -> None:
        """Each bound, and the sum of delay and duration."""
        answer = harness.authed("GET", f"/api/drip?{query}").response
        assert answer.status == 400
        assert named in json.loads(answer.body)["detail"]

    def test_the_default_duration_fits_a_short_max_delay(self, make_harness: MakeHarness) -> None:
        """With --max-delay 0.1, a drip without duration_ms takes 100 ms."""
        short = make_harness(max_delay=0.1)
        started = time.monotonic()
        assert short.authed("GET", "/api/drip?bytes=2").response.status == 200
        assert time.monotonic() - started < 1
