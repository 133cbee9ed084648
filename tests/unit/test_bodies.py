"""Bodies: the reader's limits, codings and deadlines, and the watch over reads of a length."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest

from echod.http import bodies
from echod.http.bodies import MAX_CODINGS, BodyDeadlines, BodyReader, Decoded
from echod.http.problems import (
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from tests.support.harness import FakeHeaders, FakeProto

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable

#: What ``time.perf_counter`` says in these tests: the clock the reader measures with.
NOW = 1000.0
ACCEPTED = "gzip, deflate, br, zstd"
#: Bytes that do not compress: gzip makes them longer, not shorter.
NOISE = hashlib.sha512(b"one").digest() + hashlib.sha512(b"two").digest()
#: A test's own deadline on a read that should end by itself long before.
GUARD = 10.0


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader's clock stands at NOW, so that time spent before the read is exact."""
    monkeypatch.setattr(bodies, "time", SimpleNamespace(perf_counter=lambda: NOW))


def reader(max_bytes: int = 1024, timeout: float = 30.0) -> BodyReader:
    """A reader of bodies up to ``max_bytes``, each due ``timeout`` seconds after its request."""
    return BodyReader(max_bytes, BodyDeadlines(timeout))


def read(
    body_reader: BodyReader,
    proto: FakeProto,
    headers: dict[str, str] | None = None,
    started: float = NOW,
) -> bytes:
    """The body ``proto`` sends with ``headers``, read through ``body_reader``.

    ``started`` is when the request arrived, on the reader's clock.
    """

    async def scenario() -> bytes:
        reading = body_reader.read(FakeHeaders(headers or {}), proto, started)  # type: ignore[arg-type]
        return await asyncio.wait_for(reading, GUARD)

    return asyncio.run(scenario())


async def coroutine(reading: Awaitable[bytes]) -> bytes:
    """``reading`` awaited."""
    return await reading


def pieces(data: bytes, size: int) -> list[bytes]:
    """``data`` cut in pieces of ``size`` bytes, as a client may send it."""
    return [data[i : i + size] for i in range(0, len(data), size)]


class SlowProto(FakeProto):
    """A client that sends its body a piece at a time, letting the server run in between."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Each piece after a turn of the event loop."""

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in self._chunks:
                await asyncio.sleep(0)
                yield chunk

        return chunks()


class StalledProto(FakeProto):
    """A client that sends the start of a body without a length, then nothing more."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        """One piece, then a wait without end."""

        async def chunks() -> AsyncIterator[bytes]:
            yield self._chunks[0]
            await asyncio.Event().wait()

        return chunks()


class TestDecodedLimit:
    @pytest.mark.parametrize(("limit", "fits"), [(500, True), (499, False)], ids=["at", "over"])
    def test_a_decoded_body_is_held_to_the_inclusive_limit(self, limit: int, fits: bool) -> None:
        """500 bytes gzipped small: a limit of 500 takes them, one of 499 is a 413."""
        proto = FakeProto(chunks=[gzip.compress(b"a" * 500)])
        if fits:
            assert read(reader(limit), proto, {"content-encoding": "gzip"}) == b"a" * 500
        else:
            with pytest.raises(PayloadTooLarge):
                read(reader(limit), proto, {"content-encoding": "gzip"})

    @pytest.mark.parametrize(("over", "fits"), [(0, True), (1, False)], ids=["at", "over"])
    def test_an_encoded_body_is_held_to_the_inclusive_limit_as_sent(
        self, over: int, fits: bool
    ) -> None:
        """Bytes that grow when gzipped: the limit counts them as they arrive, inclusive."""
        sent = gzip.compress(NOISE)
        proto = FakeProto(chunks=[sent])
        limit = len(sent) - over
        if fits:
            assert read(reader(limit), proto, {"content-encoding": "gzip"}) == NOISE
        else:
            with pytest.raises(PayloadTooLarge) as caught:
                read(reader(limit), proto, {"content-encoding": "gzip"})
            assert caught.value.detail == f"the body is over the limit of {limit} bytes"

    def test_pieces_count_together_against_the_limit_as_sent(self) -> None:
        """Each piece under the limit, all of them over it, decoded under it: a 413."""
        sent = gzip.compress(NOISE)
        limit = len(sent) - 1
        assert len(NOISE) < limit
        with pytest.raises(PayloadTooLarge):
            read(reader(limit), FakeProto(chunks=pieces(sent, 50)), {"content-encoding": "gzip"})

    def test_a_body_in_many_pieces_is_decoded_whole_and_remembers_what_arrived(self) -> None:
        """The decoded pieces are joined as they are; received is the sum of the pieces."""
        text = b"".join(b"line %d\n" % n for n in range(400))
        sent = gzip.compress(text, compresslevel=0)
        body = read(
            reader(10_000), FakeProto(chunks=pieces(sent, 64)), {"content-encoding": "gzip"}
        )
        assert body == text
        assert isinstance(body, Decoded)
        assert (body.codings, body.received) == (("gzip",), len(sent))


class TestCodings:
    def test_as_many_codings_as_allowed_are_all_undone(self) -> None:
        """Four layers of gzip, the most echod undoes, are the body inside."""
        sent = b"{}"
        for _ in range(MAX_CODINGS):
            sent = gzip.compress(sent)
        proto = FakeProto(chunks=[sent])
        coding = ", ".join(["gzip"] * MAX_CODINGS)
        assert read(reader(), proto, {"content-encoding": coding}) == b"{}"

    def test_one_coding_more_is_a_415_that_counts_them(self) -> None:
        """Five layers are refused before a byte is read, and the detail says why."""
        proto = FakeProto(chunks=[b"x"])
        coding = ", ".join(["gzip"] * (MAX_CODINGS + 1))
        with pytest.raises(UnsupportedMediaType) as caught:
            read(reader(), proto, {"content-encoding": coding})
        assert caught.value.detail == "the body is in 5 codings; echod decodes at most 4"
        assert caught.value.headers == (("accept-encoding", ACCEPTED),)
        assert not proto.body_read

    def test_an_unknown_coding_is_quoted_to_40_characters(self) -> None:
        """A long coding name is cut in the 415's detail."""
        name = "x" * 39 + "yz"
        with pytest.raises(UnsupportedMediaType) as caught:
            read(reader(), FakeProto(chunks=[b"x"]), {"content-encoding": name})
        assert caught.value.detail == (
            f"Content-Encoding {'x' * 39 + 'y'!r} is not one echod decodes ({ACCEPTED})"
        )

    @pytest.mark.parametrize("value", ["gzip,", ", gzip", "gzip, , identity"])
    def test_empty_members_of_the_list_are_no_coding(self, value: str) -> None:
        """RFC 9110 section 5.6.1: a list may have empty members; they are left out."""
        body = read(reader(), FakeProto(chunks=[gzip.compress(b"{}")]), {"content-encoding": value})
        assert (body, body.codings) == (b"{}", ("gzip",))  # type: ignore[attr-defined]

    @pytest.mark.parametrize("value", ["identity", "IDENTITY", "Identity"])
    def test_identity_in_any_case_is_a_body_of_declared_length_read_whole(self, value: str) -> None:
        """The server reads it in one go, and the deadlines watch that read."""
        deadlines = BodyDeadlines(30.0)
        headers = FakeHeaders({"content-encoding": value, "content-length": "2"})
        reading = BodyReader(1024, deadlines).read(headers, FakeProto(b"{}"), NOW)  # type: ignore[arg-type]
        assert reading in deadlines.reads
        assert asyncio.run(coroutine(reading)) == b"{}"

    @pytest.mark.parametrize("value", ["identity, identity", "identity,", "IDENTITY, Identity"])
    def test_a_list_of_identity_alone_is_no_coding(self, value: str) -> None:
        """The body is read as it arrives, within the limit and the deadline."""
        proto = FakeProto(chunks=[b'{"a"', b": 1}"])
        body = read(reader(), proto, {"content-encoding": value}, NOW - 1.0)
        assert body == b'{"a": 1}'
        assert not isinstance(body, Decoded)
        with pytest.raises(PayloadTooLarge):
            read(reader(7), FakeProto(chunks=[b'{"a"', b": 1}"]), {"content-encoding": value})


class TestDeclaredLength:
    @pytest.mark.parametrize("coding", ["gzip", "identity, identity"])
    def test_an_encoded_body_declared_over_the_limit_is_refused_unread(self, coding: str) -> None:
        """Content-Length counts the body as sent: over the limit, a 413 before any byte."""
        proto = FakeProto(chunks=[b"x"])
        headers = {"content-encoding": coding, "content-length": "11"}
        with pytest.raises(PayloadTooLarge) as caught:
            read(reader(10), proto, headers)
        assert caught.value.detail == "the body is over the limit of 10 bytes"
        assert not proto.body_read

    def test_an_encoded_body_declared_at_the_limit_is_read(self) -> None:
        """The limit is inclusive for a declared length too."""
        sent = gzip.compress(b"{}")
        headers = {"content-encoding": "gzip", "content-length": str(len(sent))}
        assert read(reader(len(sent)), FakeProto(chunks=[sent]), headers) == b"{}"

    @pytest.mark.parametrize("coding", ["gzip", "identity, identity"])
    def test_an_encoded_body_s_malformed_length_is_a_400_naming_it(self, coding: str) -> None:
        """The 400 quotes the Content-Length, as for a body in no coding."""
        proto = FakeProto(chunks=[b"x"])
        headers = {"content-encoding": coding, "content-length": "-1"}
        with pytest.raises(BadRequest) as caught:
            read(reader(), proto, headers)
        assert caught.value.detail == "Content-Length '-1' is not a number of bytes"
        assert not proto.body_read


class TestReadingTime:
    @pytest.mark.parametrize("coding", [None, "gzip"], ids=["plain", "encoded"])
    def test_a_stalled_body_gets_what_is_left_of_the_timeout(self, coding: str | None) -> None:
        """A request that arrived 29.8 s ago, of a 30 s timeout: a 408 after 0.2 s, not 30."""
        headers = {} if coding is None else {"content-encoding": coding}
        with pytest.raises(RequestTimeout) as caught:
            read(reader(timeout=30.0), StalledProto(chunks=[b"\x1f"]), headers, NOW - 29.8)
        assert caught.value.detail == "the body did not arrive within 30 s (--body-timeout)"

    @pytest.mark.parametrize("coding", [None, "gzip"], ids=["plain", "encoded"])
    def test_a_body_in_time_is_read_after_time_already_spent(self, coding: str | None) -> None:
        """A request that arrived 1 s ago, of a 30 s timeout, has 29 s for its body."""
        text = b"x" * 300
        sent = text if coding is None else gzip.compress(text)
        headers = {} if coding is None else {"content-encoding": coding}
        proto = SlowProto(chunks=pieces(sent, 10))
        assert read(reader(timeout=30.0), proto, headers, NOW - 1.0) == text


class FakeClock:
    """The watch's time: each of its sleeps moves the clock on, and the fifth stops it."""

    def __init__(self, now: float) -> None:
        """Start at ``now``."""
        self.now = now
        self.sleeps: list[float] = []

    def perf_counter(self) -> float:
        """What the clock says."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Move on ``seconds``; the fifth sleep ends the watch (this test's end)."""
        if len(self.sleeps) == 5:
            raise asyncio.CancelledError
        self.sleeps.append(seconds)
        self.now += seconds


class Reading:
    """A read under way, as the watch sees granian's future: something it can cancel."""

    def __init__(self, clock: FakeClock) -> None:
        """A read the ``clock`` will say when it was cancelled."""
        self.clock = clock
        self.cancelled_at: float | None = None

    def cancel(self) -> None:
        """Note when."""
        self.cancelled_at = self.clock.now


def watched(
    monkeypatch: pytest.MonkeyPatch, timeout: float, arrived: float
) -> tuple[BodyDeadlines, Reading, FakeClock]:
    """A read that arrived at ``arrived``, watched from 100 s until the watch's fifth look."""
    clock = FakeClock(100.0)
    monkeypatch.setattr(bodies, "time", clock)
    monkeypatch.setattr(bodies, "asyncio", SimpleNamespace(sleep=clock.sleep))
    deadlines = BodyDeadlines(timeout)
    reading = Reading(clock)
    deadlines.reads[reading] = arrived

    async def watch() -> None:
        await deadlines.watch()

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(watch())
    return deadlines, reading, clock


class TestWatch:
    def test_a_read_is_ended_within_a_quarter_timeout_after_it_is_due(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A 1 s timeout from 100 s, looked at four times a second: ended at 101.25 s."""
        deadlines, reading, clock = watched(monkeypatch, 1.0, arrived=100.0)
        assert clock.sleeps == [0.25] * 5
        assert reading.cancelled_at is not None
        assert 101.0 < reading.cancelled_at <= 101.25
        assert deadlines.reads == {}

    def test_a_read_is_not_ended_at_its_timeout_exactly(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Only a read that takes more than the timeout is overdue."""
        _, reading, clock = watched(monkeypatch, 1.0, arrived=100.25)
        assert clock.now == 101.25
        assert reading.cancelled_at is None

    def test_a_long_timeout_is_looked_at_once_a_second(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A read is ended within a second of its deadline, whatever the timeout."""
        _, reading, clock = watched(monkeypatch, 60.0, arrived=40.0)
        assert clock.sleeps == [1.0] * 5
        assert reading.cancelled_at == 101.0

    def test_the_408_of_a_cancelled_read_is_given_once(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """ended() answers the 408 for the read it cancelled, then forgets it."""
        deadlines, reading, _ = watched(monkeypatch, 1.0, arrived=90.0)
        late = deadlines.ended(reading)
        assert isinstance(late, RequestTimeout)
        assert late.detail == "the body did not arrive within 1 s (--body-timeout)"
        assert deadlines.ended(reading) is None
        assert deadlines.ended(object()) is None
