"""Raw WebSocket floods, written frame by frame: what no well-behaved client library sends.

A flood opens its own connection with a real handshake, then sends frames until it is
told to stop, echod cuts the connection, or its time is up. It never reads what echod
sends back, which is the point: pongs and echoes pile up on the server's side.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from dataclasses import dataclass

from tests.support.users import AUTH_HEADER

PING = 0x9
BINARY = 0x2
CONTINUATION = 0x0


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One client frame, masked as RFC 6455 requires (with a zero mask: the same bytes)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 2**16:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    return head + b"\0\0\0\0" + payload


def open_websocket(port: int, path: str = "/api/raw", host: str = "127.0.0.1") -> socket.socket:
    """A connection to ``path`` upgraded to a WebSocket, with the demo user's credentials."""
    sock = socket.create_connection((host, port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: {AUTH_HEADER}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n")[0].decode())
    return sock


@dataclass
class Flood:
    """What one flooding connection did: bytes sent, and how it ended."""

    sent: int = 0
    #: "cut": echod closed or reset it; "stalled": echod stopped reading; "time": time up.
    ended: str = ""


def flood(port: int, kind: str, seconds: float) -> Flood:
    """Send ``kind`` frames ("ping" or "fragments") on a new WebSocket for ``seconds``.

    Pings carry 125 bytes each, sent 100 at a time. Fragments open a binary message and
    then continue it 64 KiB at a time, never finishing it.
    """
    result = Flood()
    sock = open_websocket(port)
    sock.settimeout(2)
    if kind == "ping":
        burst = frame(PING, b"p" * 125) * 100
    else:
        sock.sendall(frame(BINARY, b"x" * 1024, fin=False))
        burst = frame(CONTINUATION, b"x" * 2**16, fin=False)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            sock.sendall(burst)
            result.sent += len(burst)
        result.ended = "time"
    except TimeoutError:
        result.ended = "stalled"
    except OSError:
        result.ended = "cut"
    finally:
        sock.close()
    return result
