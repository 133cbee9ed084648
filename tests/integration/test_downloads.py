"""/api/bytes/{n} against a live echod, over HTTP/1.1 and HTTP/2, plain and TLS."""

from __future__ import annotations

import gzip
import hashlib
import socket
import time
from typing import TYPE_CHECKING, Any

import pytest

from echod.http.payload import pieces
from tests.support.transports import TRANSPORTS, client, transports
from tests.support.users import AUTH_HEADER

if TYPE_CHECKING:
    from tests.support.processes import Echod

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def echod(every_transport: Echod) -> Echod:
    """The module's echod: one that every transport reaches (h2c included)."""
    return every_transport


def data(size: int, seed: int = 0, start: int = 0) -> bytes:
    """What /api/bytes/size sends, from ``start``."""
    return b"".join(pieces(seed, start, size))


IDENTITY = {"Accept-Encoding": "identity"}


@transports()
class TestOverEveryTransport:
    def test_the_bytes_come_whole_and_the_same(self, echod: Echod, transport: str) -> None:
        """8 MiB, streamed, with their length declared, identical on every transport."""
        with client(echod, transport, headers=IDENTITY) as http:
            response = http.get(f"/api/bytes/{8 * MIB}?seed=3")
        assert response.http_version == TRANSPORTS[transport]
        assert response.status_code == 200
        assert response.headers["content-length"] == str(8 * MIB)
        assert response.headers["etag"] == f'"bytes-{8 * MIB}-3"'
        assert (
            hashlib.sha256(response.content).digest() == hashlib.sha256(data(8 * MIB, 3)).digest()
        )

    def test_a_range_is_206(self, echod: Echod, transport: str) -> None:
        """A streamed part, from the middle to the end."""
        with client(echod, transport) as http:
            response = http.get(f"/api/bytes/{MIB}", headers={"Range": "bytes=1000-"})
        assert response.status_code == 206
        assert response.headers["content-range"] == f"bytes 1000-{MIB - 1}/{MIB}"
        assert response.content == data(MIB, start=1000)

    def test_gzip_streams_without_a_length(self, echod: Echod, transport: str) -> None:
        """Encoded on the fly; the client decodes it to the same bytes."""
        with (
            client(echod, transport, headers={"Accept-Encoding": "gzip"}) as http,
            http.stream("GET", f"/api/bytes/{2 * MIB}") as response,
        ):
            raw = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["etag"] == f'"bytes-{2 * MIB}-0-gzip"'
        assert "content-length" not in response.headers
        assert gzip.decompress(raw) == data(2 * MIB)

    def test_validators(self, echod: Echod, transport: str) -> None:
        """If-None-Match is 304, a range past the end 416, If-Range another tag 200."""
        with client(echod, transport) as http:
            assert (
                http.get("/api/bytes/10", headers={"If-None-Match": '"bytes-10-0"'}).status_code
                == 304
            )
            refused = http.get("/api/bytes/10", headers={"Range": "bytes=10-"})
            assert (refused.status_code, refused.headers["content-range"]) == (416, "bytes */10")
            whole = http.get(
                "/api/bytes/10", headers={"Range": "bytes=0-1", "If-Range": '"bytes-10-9"'}
            )
            assert (whole.status_code, whole.content) == (200, data(10))

    def test_head(self, echod: Echod, transport: str) -> None:
        """The length GET would send, and no body."""
        with client(echod, transport, headers=IDENTITY) as http:
            response = http.head(f"/api/bytes/{5 * MIB}")
        assert (response.status_code, response.content) == (200, b"")
        assert response.headers["content-length"] == str(5 * MIB)


def test_a_client_that_leaves_is_logged_as_499(make_echod: Any) -> None:
    """echod stops writing when the client goes, and says so in the log."""
    echod = make_echod()
    request = (
        f"GET /api/bytes/{100 * MIB} HTTP/1.1\r\nHost: echod\r\n"
        f"Authorization: {AUTH_HEADER}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", echod.port)) as conn:
        conn.sendall(request)
        conn.recv(65536)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for line in echod.request_lines(0.2) if line["path"].startswith("/api/bytes")]
        if lines:
            break
    assert [line["status"] for line in lines] == [499]


def test_n_over_the_limit_is_a_400(make_echod: Any) -> None:
    """--max-download-bytes bounds n."""
    echod = make_echod("--max-download-bytes", "1000")
    with client(echod, "http1.1", headers=IDENTITY) as http:
        assert http.get("/api/bytes/1000").status_code == 200
        refused = http.get("/api/bytes/1001")
    assert refused.status_code == 400
    assert "--max-download-bytes" in refused.json()["detail"]


@pytest.mark.parametrize("clients", [8])
def test_memory_stays_flat_while_many_download(make_echod: Any, clients: int) -> None:
    """Several slow downloads of 32 MiB at once cost the worker a few MiB, not 32 each.

    The long form, 20 clients of 100 MiB, is in tests/soak/test_downloads.py.
    """
    echod = make_echod("--tls-port", "0")
    before = echod.pss_bytes()
    request = (
        f"GET /api/bytes/{32 * MIB} HTTP/1.1\r\nHost: echod\r\nConnection: close\r\n"
        f"Authorization: {AUTH_HEADER}\r\n\r\n"
    ).encode()
    conns = [socket.create_connection(("127.0.0.1", echod.port)) for _ in range(clients)]
    received = 0
    for conn in conns:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        conn.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        received += len(head.partition(b"\r\n\r\n")[2])
    time.sleep(1.0)  # every download has begun, and none has been read: they wait
    during = echod.pss_bytes()
    for conn in conns:
        while chunk := conn.recv(1 << 20):
            received += len(chunk)
        conn.close()
    assert received == clients * 32 * MIB
    assert during - before < 16 * MIB, f"{(during - before) / MIB:.1f} MiB more during"
