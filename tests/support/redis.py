"""A real redis-server (Debian's package) on a free loopback port, for the state's tests."""

from __future__ import annotations

import socket
import subprocess
import tempfile
from pathlib import Path

from bench.server import free_port
from scripts.stack import stop
from tests.support.tools import require_tool
from tests.support.waiting import eventually

__all__ = ["RedisServer"]


class RedisServer:
    """One redis-server, in memory only, that a test starts, stops and starts again."""

    def __init__(self, port: int | None = None) -> None:
        """Prepare a server on ``port`` (a free one by default); nothing runs yet."""
        self.binary = require_tool("redis-server", "Debian package redis-server")
        self.port = port or free_port()
        self._directory = tempfile.TemporaryDirectory()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL echod's --state takes."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING (within 10 s)."""
        log = Path(self._directory.name, "redis.log")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self._directory.name,
                "--logfile", str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        eventually(self.answers, timeout=10, failure=lambda: f"redis-server: {log.read_text()}")
        return self

    def answers(self) -> bool:
        """Whether the server answers PING now."""
        if self.process is None or self.process.poll() is not None:
            return False
        return self.command("PING") == b"+PONG"

    def command(self, *words: str) -> bytes:
        """Send one command (inline), return the first line of the reply; b"" if none."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
                conn.sendall(" ".join(words).encode() + b"\r\n")
                return conn.recv(65536).split(b"\r\n", 1)[0]
        except OSError:
            return b""

    def stop(self) -> None:
        """Stop the server (SIGTERM); its data goes with it."""
        if self.process is not None:
            stop(self.process)
            self.process = None

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        self._directory.cleanup()
