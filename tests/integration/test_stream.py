"""/api/stream against a live echod: events one by one over HTTP/1.1 and HTTP/2, and its ends."""

from __future__ import annotations

import re
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.users import AUTH

if TYPE_CHECKING:
    from tests.support.processes import Echod

EVENT = re.compile(
    r'id: (\d+)\ndata: \{"seq":(\d+),"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"\}\n\n'
)
#: The first line of every stream: how long a client waits before it reconnects.
RETRY = "retry: 1000\n"


def arrivals(response: httpx.Response, started: float) -> list[tuple[int, float]]:
    """Each event's number and the seconds after ``started`` when it arrived whole.

    The stream must start with :data:`RETRY`, in its first event.
    """
    seen: list[tuple[int, float]] = []
    buffer = ""
    retried = False
    for text in response.iter_text():
        buffer += text
        if not retried and len(buffer) >= len(RETRY):
            assert buffer.startswith(RETRY), f"no {RETRY!r} first: {buffer[:40]!r}"
            buffer, retried = buffer[len(RETRY) :], True
        while retried and (match := EVENT.match(buffer)):
            assert match[1] == match[2]
            seen.append((int(match[1]), time.monotonic() - started))
            buffer = buffer[match.end() :]
    assert buffer == "", f"left over: {buffer!r}"
    return seen


def paced(client: httpx.Client, url: str) -> tuple[httpx.Response, list[tuple[int, float]]]:
    """Three events 600 ms apart, with when each arrived."""
    started = time.monotonic()
    with client.stream("GET", url + "/api/stream?count=3&interval_ms=600") as response:
        return response, arrivals(response, started)


class TestPacing:
    def test_events_arrive_one_by_one_over_http_1_1(self, echod: Echod) -> None:
        """Chunked, no Content-Length; the first event at once, each next one 600 ms on."""
        with httpx.Client(auth=AUTH, timeout=10) as client:
            response, seen = paced(client, echod.url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["x-accel-buffering"] == "no", "nginx would buffer it"
        assert "content-length" not in response.headers
        self.check(seen)

    def test_events_arrive_one_by_one_over_http_2(self, echod: Echod) -> None:
        """Over h2, each event is its own DATA frame, sent as it is made."""
        with httpx.Client(auth=AUTH, timeout=10, http2=True, verify=False) as client:  # noqa: S501
            response, seen = paced(client, echod.tls_url)
        assert response.http_version == "HTTP/2"
        assert "content-length" not in response.headers
        self.check(seen)

    @staticmethod
    def check(seen: list[tuple[int, float]]) -> None:
        """Events 1, 2, 3: the first long before the second is due, none early."""
        assert [number for number, _ in seen] == [1, 2, 3]
        (_, first), (_, second), (_, third) = seen
        assert first < 0.5, f"the first event took {first:.2f} s"
        assert second >= 0.55, f"the second event came after {second:.2f} s, before its time"
        assert third - second >= 0.55, "the third event came with the second: buffered"

    def test_head_has_the_headers_and_no_events(self, client: httpx.Client) -> None:
        """HEAD answers at once, with the stream's type."""
        response = client.head("/api/stream")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.content == b""

    def test_the_defaults_and_a_zero_interval(self, client: httpx.Client) -> None:
        """count=1000 with no pause sends all thousand events, numbered from 1."""
        with client.stream("GET", "/api/stream?count=1000&interval_ms=0") as response:
            seen = arrivals(response, time.monotonic())
        assert [number for number, _ in seen] == list(range(1, 1001))

    def test_last_event_id_resumes_after_it(self, client: httpx.Client) -> None:
        """A client that reconnects with Last-Event-ID: 2 gets 3 and 4, the first at once."""
        with client.stream(
            "GET", "/api/stream?count=4&interval_ms=0", headers={"Last-Event-ID": "2"}
        ) as response:
            seen = arrivals(response, time.monotonic())
        assert [number for number, _ in seen] == [3, 4]


class TestBounds:
    @pytest.mark.parametrize(
        "query",
        ["count=0", "count=1001", "count=-1", "count=1.0", "count=99999999999999999999",
         "interval_ms=10001", "interval_ms=-5", "interval_ms=1e3", "count=1&count=2",
         "count=12", "count=1000&interval_ms=11", "interval_ms=99999999999999999999"],
    )  # fmt: skip
    def test_out_of_bounds_is_a_400(self, client: httpx.Client, query: str) -> None:
        """Each bound, and the whole stream's length against --max-delay (10 s)."""
        response = client.get(f"/api/stream?{query}")
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        detail = response.json()["detail"]
        assert "count" in detail or "interval_ms" in detail or "--max-delay" in detail

    def test_needs_credentials(self, echod: Echod) -> None:
        """401 without credentials, 405 for POST."""
        assert httpx.get(echod.url + "/api/stream").status_code == 401
        assert httpx.post(echod.url + "/api/stream", auth=AUTH).status_code == 405


class TestEnds:
    def test_logged_once_at_the_end_with_its_events(self, make_echod: Any) -> None:
        """One line, status 200, events as sent."""
        echod = make_echod()
        with httpx.Client(auth=AUTH) as client:
            client.get(
                echod.url + "/api/stream?count=4&interval_ms=0", headers={"X-Request-ID": "s"}
            )
        [line] = [line for line in echod.request_lines() if line["requestId"] == "s"]
        assert (line["status"], line["events"], line["path"]) == (200, 4, "/api/stream")

    def test_a_client_that_leaves_stops_it_as_499(self, make_echod: Any) -> None:
        """Closing after two events stops the stream, logged 499 with what was sent."""
        echod = make_echod()
        with (
            httpx.Client(auth=AUTH, timeout=10) as client,
            client.stream(
                "GET",
                echod.url + "/api/stream?count=100&interval_ms=100",
                headers={"X-Request-ID": "gone"},
            ) as response,
        ):
            received = ""
            for text in response.iter_text():
                received += text
                if received.count("\n\n") >= 2:
                    break
        time.sleep(0.5)  # a next event finds the connection closed
        [line] = [line for line in echod.request_lines() if line["requestId"] == "gone"]
        assert line["status"] == 499
        assert 2 <= line["events"] < 100

    def test_sigterm_ends_it_early_and_cleanly(self, make_echod: Any) -> None:
        """A 10 s stream ends soon after SIGTERM, on a whole event, and echod exits 0."""
        echod = make_echod("--shutdown-timeout", "5")
        received: list[str] = []

        def read() -> None:
            with httpx.stream(
                "GET", echod.url + "/api/stream?count=101&interval_ms=100", auth=AUTH, timeout=20
            ) as response:
                received.extend(response.iter_text())

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.6)
        started = time.monotonic()
        echod.signal(signal.SIGTERM)
        reader.join(timeout=20)
        assert echod.wait(timeout=20) == 0
        assert time.monotonic() - started < 5
        events = EVENT.findall("".join(received))
        assert 3 <= len(events) < 101
        last = events[-1][0]
        assert "".join(received).endswith(
            f'\n\nevent: shutdown\ndata: {{"lastEventId":{last}}}\n\n'
        ), "a stream cut short says so after its last whole event"
        [line] = [line for line in echod.log_lines() if line.get("path") == "/api/stream"]
        assert (line["status"], line["events"]) == (200, len(events))
