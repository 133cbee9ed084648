"""Compressed answers and compressed request bodies against a live echod, on every transport."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import time
import zlib
from typing import TYPE_CHECKING, Any

import brotli  # type: ignore[import-untyped]
import pytest
from backports import zstd

from tests.support.bombs import CODINGS, MIB, bomb, encode
from tests.support.transports import client, transports
from tests.support.users import AUTH_HEADER

if TYPE_CHECKING:
    from tests.support.processes import Echod

BIG = json.dumps({f"key{n}": "value" * 8 for n in range(40)}).encode()


@pytest.fixture(scope="module")
def echod(every_transport: Echod) -> Echod:
    """The module's echod: one that every transport reaches (h2c included)."""
    return every_transport


def decode(coding: str, raw: bytes) -> bytes:
    """``raw`` decoded by the coding's own library."""
    if coding == "br":
        return bytes(brotli.decompress(raw))
    if coding == "zstd":
        return zstd.decompress(raw)
    return gzip.decompress(raw) if coding == "gzip" else zlib.decompress(raw)


@transports()
@pytest.mark.parametrize("coding", CODINGS)
def test_the_echo_comes_in_the_coding_asked_for(echod: Echod, transport: str, coding: str) -> None:
    """Content-Encoding and Vary, and a body that decodes to the echo."""
    with (
        client(echod, transport, headers={"Accept-Encoding": coding}) as http,
        http.stream("POST", "/api/echo", content=BIG) as response,
    ):
        raw = b"".join(response.iter_raw())
    assert response.status_code == 200
    assert response.headers["content-encoding"] == coding
    assert response.headers["vary"] == "accept-encoding"
    assert json.loads(decode(coding, raw))["echoed"] is True


@transports()
@pytest.mark.parametrize("coding", CODINGS)
def test_an_encoded_body_is_decoded_before_the_echo(
    echod: Echod, transport: str, coding: str
) -> None:
    """The echo, the raw echo and the inspection all see the decoded body."""
    headers = {"Content-Encoding": coding, "Accept-Encoding": "identity"}
    with client(echod, transport, headers=headers) as http:
        echoed = http.post("/api/echo", content=encode(coding, b'{"a": 1}'))
        raw = http.put("/api/raw", content=encode(coding, b"bytes"))
        sent = encode(coding, b"text")
        report = http.post("/api/inspect", content=sent).json()
    assert echoed.content == b'{"a":1,"echoed":true}\n'
    assert raw.content == b"bytes"
    assert report["body"]["text"] == "text"
    assert report["body"]["received"]["bytes"] == len(sent)
    assert report["body"]["received"]["contentEncoding"] == [coding]


@transports()
def test_the_report_comes_compressed_and_identity_refused_is_406(
    echod: Echod, transport: str
) -> None:
    """An inspection in br, and a 406 when nothing will do."""
    with client(echod, transport, headers={"Accept-Encoding": "br"}) as http:
        report = http.get("/api/inspect")
        refused = http.get("/api/inspect", headers={"Accept-Encoding": "identity;q=0"})
    assert report.headers["content-encoding"] == "br"
    assert report.json()["method"] == "GET"
    assert refused.status_code == 406


def test_a_gzip_bomb_is_refused_after_little_reading_in_flat_memory(make_echod: Any) -> None:
    """10 MB of gzip that decodes to 10 GB: a 413 before the client has sent 1 MiB.

    The body is chunked, so no declared length gives it away: echod must decode to
    find out, and stops as soon as the decoded body passes --max-body-bytes (1 MiB).
    """
    echod = make_echod("--tls-port", "0")
    payload = bomb("gzip", 10 * 1024)
    assert len(payload) > 10_000_000
    before = echod.pss_bytes()
    head = (
        "POST /api/echo HTTP/1.1\r\nHost: echod\r\nConnection: close\r\n"
        f"Authorization: {AUTH_HEADER}\r\nContent-Encoding: gzip\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    sent, answer, piece = 0, b"", 16 * 1024
    with socket.create_connection(("127.0.0.1", echod.port), timeout=10) as conn:
        conn.sendall(head)
        conn.setblocking(False)  # noqa: FBT003 - socket's own signature
        started = time.monotonic()
        while not answer and sent < len(payload) and time.monotonic() - started < 10:
            chunk = payload[sent : sent + piece]
            with contextlib.suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            time.sleep(0.005)  # 16 KiB every 5 ms: 1 MiB takes 320 ms to send
            try:
                answer = conn.recv(4096)
            except BlockingIOError:
                continue
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
    assert sent <= MIB, f"the client had sent {sent} bytes before the 413"
    assert echod.pss_bytes() - before < 8 * MIB


@pytest.mark.parametrize("coding", CODINGS)
def test_a_bomb_of_each_coding_is_a_413(echod: Echod, coding: str) -> None:
    """100 MiB in a body of at most 100 KB: decoding stops at 1 MiB."""
    with client(echod, "http1.1", headers={"Content-Encoding": coding}) as http:
        response = http.post("/api/echo", content=bomb(coding, 100))
    assert response.status_code == 413
    assert "decodes to more than" in response.json()["detail"]
