"""Downloads under load: 20 clients fetch /api/bytes/104857600 at once; memory stays flat."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from echod.http.payload import pieces
from tests.soak.support import SLACK, join
from tests.support.users import AUTH_HEADER

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.processes import Echod

CLIENTS = 20
SIZE = 100 * 1024 * 1024
MIB = 1024 * 1024


def _download(echod: Echod, seconds: float, got: dict[int, tuple[int, str]], n: int) -> None:
    """Fetch SIZE bytes over HTTP/1.1, reading at most SIZE / ``seconds`` bytes a second."""
    request = (
        f"GET /api/bytes/{SIZE} HTTP/1.1\r\nHost: echod\r\nConnection: close\r\n"
        f"Authorization: {AUTH_HEADER}\r\n\r\n"
    ).encode()
    digest, size, rate = hashlib.sha256(), 0, SIZE / seconds
    with socket.create_connection(("127.0.0.1", echod.port), timeout=60) as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        conn.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(65536)
        head, _, body = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        started = time.monotonic()
        while True:
            digest.update(body)
            size += len(body)
            ahead = size / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)  # a client slower than echod: the case that piles up
            body = conn.recv(1 << 20)
            if not body:
                break
    got[n] = (size, digest.hexdigest())


def test_twenty_downloads_of_100_mib_keep_memory_flat(
    make_echod: Any, soak_seconds: float, record: Callable[..., None]
) -> None:
    """The instance's PSS before, at its peak during, and after 20 x 100 MiB at once."""
    echod = make_echod("--tls-port", "0", "--log-level", "warning")
    expected = hashlib.sha256()
    for piece in pieces(0, 0, SIZE):
        expected.update(piece)
    before = echod.pss_bytes()
    seconds = max(soak_seconds, 5)
    got: dict[int, tuple[int, str]] = {}
    clients = [
        threading.Thread(target=_download, args=(echod, seconds, got, n)) for n in range(CLIENTS)
    ]
    started = time.monotonic()
    for client in clients:
        client.start()
    peak = before
    while any(client.is_alive() for client in clients):
        peak = max(peak, echod.pss_bytes())
        time.sleep(0.25)
        if time.monotonic() - started > seconds * 4 + SLACK:
            break
    for client in clients:
        join(client, SLACK, "the downloads")
    took = time.monotonic() - started
    time.sleep(1.0)
    after = echod.pss_bytes()
    assert got == {n: (SIZE, expected.hexdigest()) for n in range(CLIENTS)}
    record(
        clients=CLIENTS,
        bytes_each=SIZE,
        took_s=round(took, 1),
        pss_before_mib=round(before / MIB, 1),
        pss_peak_mib=round(peak / MIB, 1),
        pss_after_mib=round(after / MIB, 1),
    )
    assert peak - before < 32 * MIB, f"PSS grew by {(peak - before) / MIB:.1f} MiB during"
    assert after - before < 16 * MIB, f"PSS grew by {(after - before) / MIB:.1f} MiB after"
