"""/api/drip against a live echod: pieces on time over every transport, and its ends."""

from __future__ import annotations

import signal
import threading
import time
import zlib
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.transports import TRANSPORTS, client, transports
from tests.support.users import AUTH

if TYPE_CHECKING:
    from tests.support.processes import Echod


@pytest.fixture(scope="module")
def echod(every_transport: Echod) -> Echod:
    """The module's echod: one that every transport reaches (h2c included)."""
    return every_transport


def arrivals(response: httpx.Response, started: float) -> list[tuple[bytes, float]]:
    """Each piece as it arrived, with the seconds after ``started``."""
    return [(piece, time.monotonic() - started) for piece in response.iter_raw() if piece]


@transports()
def test_pieces_arrive_as_they_are_sent(echod: Echod, transport: str) -> None:
    """Three pieces 400 ms apart, after a delay of 200 ms: none early, none together."""
    with client(echod, transport) as http:
        started = time.monotonic()
        with http.stream(
            "GET", "/api/drip?bytes=6&chunks=3&duration_ms=1200&delay_ms=200"
        ) as response:
            seen = arrivals(response, started)
    assert response.http_version == TRANSPORTS[transport]
    assert response.status_code == 200
    assert "content-length" not in response.headers
    assert b"".join(piece for piece, _ in seen) == b"******"
    times = [at for _, at in seen]
    assert len(times) == 3, seen
    assert 0.15 < times[0] < 0.5, times
    assert times[1] - times[0] > 0.3, f"the second piece came with the first: {times}"
    assert times[2] - times[1] > 0.3, f"the third piece came with the second: {times}"


@transports()
def test_an_encoded_drip_is_flushed_piece_by_piece(echod: Echod, transport: str) -> None:
    """gzip pieces decode as they come: a client sees each one on time."""
    with client(echod, transport, headers={"Accept-Encoding": "gzip"}) as http:
        started = time.monotonic()
        with http.stream("GET", "/api/drip?bytes=300&chunks=2&duration_ms=800") as response:
            reader = zlib.decompressobj(31)
            seen = [(reader.decompress(piece), at) for piece, at in arrivals(response, started)]
    assert response.headers["content-encoding"] == "gzip"
    stars = [(text, at) for text, at in seen if text]
    assert [len(text) for text, _ in stars] == [150, 150]
    assert stars[1][1] - stars[0][1] > 0.3
    assert reader.eof


def test_sigterm_ends_a_drip_early(make_echod: Any) -> None:
    """A drip of 10 s ends soon after SIGTERM, cleanly, and echod exits 0."""
    echod = make_echod()
    got: dict[str, Any] = {}

    def download() -> None:
        with httpx.Client(auth=AUTH, timeout=20) as http:
            got["response"] = http.get(echod.url + "/api/drip?bytes=100&duration_ms=10000")

    thread = threading.Thread(target=download)
    thread.start()
    time.sleep(1.0)
    started = time.monotonic()
    echod.signal(signal.SIGTERM)
    thread.join(15)
    assert echod.wait(15) == 0
    assert time.monotonic() - started < 5
    response = got["response"]
    assert response.status_code == 200
    assert 0 < len(response.content) < 100
