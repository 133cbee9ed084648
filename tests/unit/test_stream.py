"""Stream: the pace a request may ask of /api/stream, and the events it sends, in process."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import pytest
from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from echod.http.drain import Drain
from echod.http.problems import BadRequest
from echod.http.stream import DEFAULT_EVENTS, MAX_EVENTS, RETRY_MS, Streams
from tests.support.harness import FakeHeaders, FakeScope, new_record

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

#: An event as the module documents it: its id, then its data, then a blank line.
EVENT = re.compile(
    r'id: (?P<id>[0-9]+)\ndata: \{"seq":(?P<seq>[0-9]+),'
    r'"time":"(?P<time>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)"\}\n\n'
)
#: The headers of every stream's answer, before its request id and its time to the head.
HEADERS = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-store"),
    ("x-accel-buffering", "no"),
]
#: What the first event starts with: how long a client waits before it reconnects.
RETRY = f"retry: {RETRY_MS}\n".encode()
#: The event that ends a stream cut short, after the event of id n.
SHUTDOWN = 'event: shutdown\ndata: {{"lastEventId":{}}}\n\n'


def events(sent: list[bytes]) -> list[bytes]:
    """The events of a stream, the first without its retry line, the shutdown event left out."""
    found = [data.removeprefix(RETRY) if index == 0 else data for index, data in enumerate(sent)]
    return [data for data in found if not data.startswith(b"event: shutdown")]


RESPONSE_TIME = re.compile(r"[0-9]+\.[0-9]{3}ms")


class Answer(NamedTuple):
    """What a stream's record says once it is done: its status, why, and its events."""

    status: int
    detail: str | None = None
    events: int | None = None


def stamped(headers: list[tuple[str, str]], rid: str) -> list[tuple[str, str]]:
    """``headers`` with ``X-Response-Time`` checked and left out, the rest as sent."""
    assert headers[-1][0] == "x-response-time"
    assert RESPONSE_TIME.fullmatch(headers[-1][1])
    assert headers[-2] == ("x-request-id", rid)
    return headers[:-1]


#: How long a drain may take to end a stream, with room for a slow machine.
NOTICED = 2.0


class Transport:
    """A stream transport that records what is sent, and fails as a leaving client would."""

    def __init__(
        self, fail_after: int | None = None, error: type[Exception] = ProtocolClosed
    ) -> None:
        """Take ``fail_after`` events, then raise ``error`` on the next send; None: never."""
        self.sent: list[bytes] = []
        self.attempts = 0
        self._fail_after = fail_after
        self._error = error
        #: Called after each event is taken, with how many have been.
        self.on_send: Callable[[int], None] = lambda _count: None

    async def send_bytes(self, data: bytes) -> None:
        """Take one event, or fail once the client has left."""
        self.attempts += 1
        if self._fail_after is not None and len(self.sent) >= self._fail_after:
            raise self._error("RSGI transport is closed")
        self.sent.append(data)
        self.on_send(len(self.sent))


class StreamProto:
    """An RSGI HTTP protocol that records how it is answered and hands out a transport."""

    def __init__(self, transport: Transport | None = None) -> None:
        """Answer streams through ``transport``."""
        self.transport = transport or Transport()
        self.streams: list[tuple[int, list[tuple[str, str]]]] = []
        self.empties: list[tuple[int, list[tuple[str, str]]]] = []

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> Transport:
        """Record the start of a stream and hand out its transport."""
        self.streams.append((status, list(headers)))
        return self.transport

    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None:
        """Record an answer without a body."""
        self.empties.append((status, list(headers)))


class Ready:
    """The shared ready byte, true until the test drains."""

    def __init__(self, ready: bool = True) -> None:
        """Start ready, or already draining."""
        self.ready = ready

    def __call__(self) -> bool:
        """Whether the instance is ready."""
        return self.ready

    def drain(self, _count: int = 0) -> None:
        """The supervisor drains the instance."""
        self.ready = False


def call(
    streams: Streams,
    query: str,
    proto: StreamProto,
    method: str = "GET",
    rid: str = "rid-1",
    headers: dict[str, str] | None = None,
) -> tuple[Answer, Coroutine[Any, Any, None] | None]:
    """What the handler says of a request with ``query``, and the stream it returns to await."""
    scope = FakeScope(
        method=method, path="/api/stream", query_string=query, headers=FakeHeaders(headers or {})
    )
    record = new_record(method, "/api/stream", rid)
    streaming = streams(cast("Any", scope), cast("Any", proto), record, b"")
    return Answer(record.status, record.detail, record.events), streaming


def stream(
    query: str,
    proto: StreamProto | None = None,
    *,
    max_delay: float = 10.0,
    ready: Ready | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[Answer, StreamProto, float]:
    """Run a GET stream to its end: its answer, the protocol it went through, its duration."""
    proto = proto or StreamProto()
    drain = Drain(ready or Ready())
    record = new_record("GET", "/api/stream")

    async def scenario() -> None:
        scope = FakeScope(
            method="GET",
            path="/api/stream",
            query_string=query,
            headers=FakeHeaders(headers or {}),
        )
        streams = Streams(max_delay=max_delay, drain=drain)
        streaming = streams(cast("Any", scope), cast("Any", proto), record, b"")
        assert streaming is not None
        await streaming

    began = time.monotonic()
    asyncio.run(scenario())
    answer = Answer(record.status, record.detail, record.events)
    return answer, proto, time.monotonic() - began


def refused(query: str, *, max_delay: float = 10.0, method: str = "GET") -> str:
    """The detail of the 400 the handler raises for ``query``, before anything is sent."""
    proto = StreamProto()
    streams = Streams(max_delay=max_delay, drain=Drain(Ready()))
    with pytest.raises(BadRequest) as caught:
        call(streams, query, proto, method)
    assert proto.streams == proto.empties == []
    return caught.value.detail


class TestPace:
    @pytest.mark.parametrize(
        ("query", "name", "bounds"),
        [
            ("count=0", "count='0'", "from 1 to 1000"),
            ("count=1001", "count='1001'", "from 1 to 1000"),
            ("count=-1", "count='-1'", "from 1 to 1000"),
            ("count=1.5", "count='1.5'", "from 1 to 1000"),
            ("count=", "count=''", "from 1 to 1000"),
            ("count", "count=''", "from 1 to 1000"),
            ("interval_ms=1001", "interval_ms='1001'", "from 0 to 1000"),
            ("interval_ms=-5", "interval_ms='-5'", "from 0 to 1000"),
            ("interval_ms=1e2", "interval_ms='1e2'", "from 0 to 1000"),
        ],
    )
    def test_count_and_interval_out_of_bounds_are_a_400(
        self, query: str, name: str, bounds: str
    ) -> None:
        """count is 1 to 1000; interval_ms is 0 to --max-delay in milliseconds."""
        detail = refused(query, max_delay=1.0)
        assert detail.startswith(f"{name} is not a whole number {bounds}")

    def test_count_given_twice_is_a_400(self) -> None:
        """A control given twice is refused, naming it."""
        assert refused("count=2&count=3") == "count is given 2 times; give it once"

    def test_a_stream_longer_than_the_max_delay_is_a_400(self) -> None:
        """(count - 1) * interval over --max-delay is refused, saying by how much."""
        detail = refused("count=3&interval_ms=501", max_delay=1.0)
        assert detail == (
            "3 events 501 ms apart take 1002 ms, over the longest delay of 1000 ms (--max-delay)"
        )

    def test_the_defaults_are_held_to_the_same_rule(self) -> None:
        """Ten events a second apart need --max-delay of nine seconds at least."""
        detail = refused("", max_delay=1.0)
        assert detail.startswith("10 events 1000 ms apart take 9000 ms")
        assert refused("count=5", max_delay=1.0).startswith("5 events 1000 ms apart take 4000 ms")

    def test_a_head_is_held_to_the_same_rule(self) -> None:
        """A HEAD is checked as its GET would be, and answered nothing if refused."""
        assert "over the longest delay" in refused(
            "count=3&interval_ms=600", max_delay=1.0, method="HEAD"
        )

    @pytest.mark.parametrize(
        "query",
        [
            "count=3&interval_ms=500",
            "count=2&interval_ms=1000",
            "count=1000&interval_ms=1",
            "count=1",
        ],
    )
    def test_a_stream_of_exactly_the_max_delay_is_allowed(self, query: str) -> None:
        """The rule is inclusive; one event takes no time whatever the interval."""
        proto = StreamProto()
        head, _ = call(Streams(max_delay=1.0, drain=Drain(Ready())), query, proto, "HEAD")
        assert head == Answer(200, events=0)

    def test_the_defaults_fit_the_default_max_delay(self) -> None:
        """With --max-delay 10, a plain GET /api/stream is allowed: 10 events, 1 s apart."""
        assert DEFAULT_EVENTS == 10
        proto = StreamProto()
        head, _ = call(Streams(max_delay=10.0, drain=Drain(Ready())), "", proto, "HEAD")
        assert head == Answer(200, events=0)


class TestHead:
    def test_head_answers_at_once_without_a_stream(self) -> None:
        """HEAD gets the stream's status and headers, no body, and no events are sent."""
        proto = StreamProto()
        answer, _ = call(
            Streams(max_delay=10.0, drain=Drain(Ready())),
            "count=5&interval_ms=100",
            proto,
            "HEAD",
            rid="rid-head",
        )
        assert answer == Answer(200, events=0)
        assert [(status, stamped(headers, "rid-head")) for status, headers in proto.empties] == [
            (200, [*HEADERS, ("x-request-id", "rid-head")])
        ]
        assert proto.streams == []
        assert proto.transport.sent == []


class TestEvents:
    def test_exactly_count_events_of_the_documented_form(self) -> None:
        """Each event is id: n, then data {"seq":n,"time":...}, then a blank line, in order."""
        before = time.time()
        answer, proto, _ = stream("count=5&interval_ms=0")
        after = time.time()
        assert answer == Answer(200, events=5)
        assert proto.transport.sent[0].startswith(RETRY), "the first event says when to retry"
        sent = events(proto.transport.sent)
        assert len(sent) == len(proto.transport.sent) == 5
        for seq, data in enumerate(sent, start=1):
            match = EVENT.fullmatch(data.decode())
            assert match is not None, data
            stamp = match["time"]
            assert data == f'id: {seq}\ndata: {{"seq":{seq},"time":"{stamp}"}}\n\n'.encode()
            assert json.loads(data.decode().split("data: ", 1)[1]) == {"seq": seq, "time": stamp}
            when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            assert before - 1 <= when.timestamp() <= after + 1

    def test_the_stream_starts_with_its_headers(self) -> None:
        """One 200 stream answer, an event stream that no cache keeps, with the request id."""
        _, proto, _ = stream("count=1")
        assert [(status, stamped(headers, "rid-1")) for status, headers in proto.streams] == [
            (200, [*HEADERS, ("x-request-id", "rid-1")])
        ]
        assert "content-length" not in dict(proto.streams[0][1])
        assert proto.empties == []

    def test_times_never_go_backwards(self) -> None:
        """Each event's time is at or after the one before."""
        _, proto, _ = stream("count=20&interval_ms=0")
        stamps = [EVENT.fullmatch(data.decode())["time"] for data in events(proto.transport.sent)]  # type: ignore[index]
        assert stamps == sorted(stamps)

    def test_the_default_count_is_ten(self) -> None:
        """Without count, ten events are sent."""
        answer, proto, _ = stream("interval_ms=0")
        assert answer == Answer(200, events=10)
        assert len(proto.transport.sent) == 10

    def test_the_most_events_allowed_are_all_sent(self) -> None:
        """count=1000 sends a thousand events, numbered 1 to 1000."""
        answer, proto, _ = stream(f"count={MAX_EVENTS}&interval_ms=0")
        assert answer == Answer(200, events=MAX_EVENTS)
        sent = proto.transport.sent
        assert len(sent) == MAX_EVENTS
        assert sent[-1].startswith(b"id: 1000\n")

    def test_events_are_paced_by_the_interval(self) -> None:
        """Three events 100 ms apart take at least 200 ms, the first sent at once."""
        answer, _, took = stream("count=3&interval_ms=100")
        assert answer == Answer(200, events=3)
        assert 0.18 <= took < 5


class TestClientGone:
    @pytest.mark.parametrize("taken", [0, 1, 3])
    def test_a_client_that_leaves_ends_the_stream_as_499(self, taken: int) -> None:
        """The events the client took are counted; nothing more is sent after it left."""
        proto = StreamProto(Transport(fail_after=taken))
        answer, _, _ = stream("count=10&interval_ms=0", proto)
        assert answer.status == 499
        assert answer.events == taken
        assert answer.detail == "the client left the stream"
        assert proto.transport.attempts == taken + 1

    def test_a_protocol_error_is_a_client_gone_too(self) -> None:
        """A broken connection ends the stream the same way."""
        proto = StreamProto(Transport(fail_after=2, error=ProtocolError))
        answer, _, _ = stream("count=10&interval_ms=0", proto)
        assert (answer.status, answer.events) == (499, 2)


class TestDrain:
    def test_a_drain_ends_a_stream_early_and_cleanly(self) -> None:
        """Draining during the first interval ends the stream at once, a 200 with one event."""
        ready = Ready()
        proto = StreamProto()
        proto.transport.on_send = ready.drain
        answer, _, took = stream("count=10&interval_ms=5000", proto, max_delay=60.0, ready=ready)
        assert answer == Answer(200, events=1)
        assert len(proto.transport.sent) == 2
        assert proto.transport.sent[-1] == SHUTDOWN.format(1).encode(), "cut short, and says so"
        assert took < NOTICED

    def test_a_drain_after_some_events_keeps_them(self) -> None:
        """Events sent before the drain count; the rest are not sent."""
        ready = Ready()
        proto = StreamProto()
        proto.transport.on_send = lambda count: ready.drain() if count == 3 else None
        answer, _, took = stream("count=10&interval_ms=400", proto, ready=ready)
        assert answer.status == 200
        assert answer.events is not None
        assert 3 <= answer.events < 10
        assert len(events(proto.transport.sent)) == answer.events
        assert proto.transport.sent[-1] == SHUTDOWN.format(answer.events).encode()
        assert took < 3.6, "the stream did not run to its end"

    def test_a_stream_that_starts_while_draining_sends_its_first_event_only(self) -> None:
        """The first event goes at once; the wait for the next one ends at once."""
        answer, proto, took = stream(
            "count=10&interval_ms=5000", max_delay=60.0, ready=Ready(ready=False)
        )
        assert answer == Answer(200, events=1)
        assert len(proto.transport.sent) == 2
        assert proto.transport.sent[-1] == SHUTDOWN.format(1).encode()
        assert took < NOTICED

    def test_a_stream_that_runs_to_its_end_sends_no_shutdown(self) -> None:
        """Only a stream cut short ends with the shutdown event."""
        _, proto, _ = stream("count=3&interval_ms=0")
        assert not any(data.startswith(b"event:") for data in proto.transport.sent)


class TestResume:
    def test_a_client_that_reconnects_gets_the_events_after_its_last(self) -> None:
        """Last-Event-ID: 3 of a stream of 5 gets 4 and 5, the first of them at once."""
        answer, proto, _ = stream("count=5&interval_ms=0", headers={"last-event-id": "3"})
        assert answer == Answer(200, events=2)
        sent = proto.transport.sent
        assert sent[0].startswith(RETRY + b"id: 4\n")
        assert [data.split(b"\n", 1)[0] for data in events(sent)] == [b"id: 4", b"id: 5"]

    @pytest.mark.parametrize("last", ["5", "6", "999999999"])
    def test_nothing_left_is_a_204_that_stops_event_source(self, last: str) -> None:
        """An EventSource stops reconnecting at a 204 (HTML's server-sent events)."""
        proto = StreamProto()
        answer, streaming = call(
            Streams(max_delay=10.0, drain=Drain(Ready())),
            "count=5&interval_ms=0",
            proto,
            headers={"last-event-id": last},
        )
        assert streaming is None
        assert answer == Answer(204, events=0)
        assert [status for status, _ in proto.empties] == [204]

    @pytest.mark.parametrize("last", ["", "0"])
    def test_an_empty_or_zero_id_starts_from_the_first(self, last: str) -> None:
        """No id yet (an empty one resets it in EventSource) starts from event 1."""
        answer, _, _ = stream("count=2&interval_ms=0", headers={"last-event-id": last})
        assert answer == Answer(200, events=2)

    @pytest.mark.parametrize("last", ["abc", "-1", "1.5", "1e3", " 1", "1" * 10])
    def test_an_id_echod_never_sent_is_a_400(self, last: str) -> None:
        """Only whole numbers are ids of this stream."""
        streams = Streams(max_delay=10.0, drain=Drain(Ready()))
        with pytest.raises(BadRequest) as caught:
            call(streams, "count=2", StreamProto(), headers={"last-event-id": last})
        assert caught.value.detail.startswith("Last-Event-ID")
