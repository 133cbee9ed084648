"""WebSocket parts without a server: the Origin rule and the answer to each message."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any, cast

import pytest

from echod.http import websocket
from echod.http.drain import Drain
from echod.http.websocket import (
    MEMORY,
    SocketLimits,
    WebSockets,
    _address,
    _answer,
    _shut_down,
    origin_allowed,
    same_origin,
)
from tests.support.harness import RepeatedHeaders, new_record


class TestSameOrigin:
    @pytest.mark.parametrize(
        ("origin", "host", "same"),
        [
            ("http://localhost:3000", "localhost:3000", True),
            ("https://echod.example", "echod.example", True),
            ("https://echod.example:443", "echod.example", True),
            ("http://echod.example", "echod.example:80", True),
            ("HTTP://ECHOD.example", "echod.EXAMPLE", True),
            ("http://[::1]:3000", "[::1]:3000", True),
            ("http://localhost:3001", "localhost:3000", False),
            ("https://echod.example", "echod.example:80", False),
            ("http://evil.example", "echod.example", False),
            ("null", "echod.example", False),
            ("http://echod.example", None, False),
            ("http://echod.example.evil", "echod.example", False),
        ],
        ids=[
            "same",
            "default-https-port",
            "explicit-443",
            "explicit-80-in-host",
            "case",
            "ipv6",
            "other-port",
            "scheme-port-mismatch",
            "other-host",
            "opaque-null",
            "no-host",
            "suffix",
        ],
    )
    def test_origin_is_compared_with_host(self, origin: str, host: str | None, same: bool) -> None:
        """Scheme-default ports are equal to none; anything else must match exactly."""
        assert same_origin(origin, host) is same


class TestOriginBehindAProxy:
    """The origin a browser used, as a proxy in front describes it (X-Forwarded-*, Forwarded)."""

    @pytest.mark.parametrize(
        ("origin", "headers", "allowed"),
        [
            (
                "https://echod.example:8443",
                [("host", "echod.example"), ("x-forwarded-host", "echod.example:8443")],
                True,
            ),
            (
                "https://echod.example:8443",
                [
                    ("host", "echod.example"),
                    ("x-forwarded-host", "echod.example"),
                    ("x-forwarded-port", "8443"),
                ],
                True,
            ),
            (
                "https://echod.example:8443",
                [("host", "backend:3000"), ("forwarded", 'host="echod.example:8443";proto=https')],
                True,
            ),
            (
                "https://echod.example",
                [("host", "backend:3000"), ("x-forwarded-host", "other.example, echod.example")],
                True,
            ),
            ("https://echod.example:8443", [("host", "echod.example")], False),
            (
                "https://evil.example",
                [("host", "echod.example"), ("x-forwarded-host", "echod.example:8443")],
                False,
            ),
            (
                "https://echod.example:9999",
                [
                    ("host", "echod.example"),
                    ("x-forwarded-host", "echod.example"),
                    ("x-forwarded-port", "8443"),
                ],
                False,
            ),
        ],
        ids=[
            "x-forwarded-host-with-port",
            "x-forwarded-host-and-port",
            "forwarded-host",
            "any-x-forwarded-host-item",
            "host-without-its-port",
            "another-site",
            "another-port",
        ],
    )
    def test_the_forwarded_host_names_the_origin_too(
        self, origin: str, headers: list[tuple[str, str]], allowed: bool
    ) -> None:
        """nginx's Host $host drops the port; X-Forwarded-Host $http_host keeps it."""
        assert origin_allowed(origin, cast("Any", RepeatedHeaders(*headers))) is allowed


class TestAnswer:
    def test_the_echo_answers_the_object_as_text_without_a_newline(self) -> None:
        """Exactly the HTTP echo's rules, but a WebSocket message carries no newline."""
        assert _answer("echo", '{"b": 1, "a": 2}') == '{"b":1,"a":2,"echoed":true}'

    def test_raw_answers_the_message_itself(self) -> None:
        """Text as text, bytes as bytes."""
        assert _answer("raw", "é") == "é"
        assert _answer("raw", b"\x00") == b"\x00"

    def test_binary_on_the_echo_is_a_415(self) -> None:
        """JSON comes as text."""
        with pytest.raises(Exception, match="binary messages are not supported") as raised:
            _answer("echo", b"{}")
        assert getattr(raised.value, "status", None) == 415


class TestReply:
    def test_over_the_limit_is_a_413_problem_that_closes(self) -> None:
        """The size is counted in bytes of UTF-8, and the problem names the request id."""
        sockets = WebSockets(
            recorder=None,  # type: ignore[arg-type]
            drain=Drain(lambda: True),
            limits=SocketLimits(
                max_message_bytes=4, idle_timeout=1, max_connections=1, memory_limit=2**30
            ),
        )
        reply, closing = sockets._reply("raw", new_record(path="/api/raw"), "ééé")
        assert closing
        problem = json.loads(reply)
        assert (problem["status"], problem["requestId"], problem["instance"]) == (
            413,
            "rid-1",
            "/api/raw",
        )
        assert sockets._reply("raw", new_record(path="/api/raw"), "éé") == ("éé", False)


class TestMemoryGuard:
    def test_addresses_are_written_as_granian_writes_them(self) -> None:
        """host:port, with IPv6 hosts in brackets."""
        assert _address(("127.0.0.1", 3000)) == "127.0.0.1:3000"
        assert _address(("::1", 3000, 0, 0)) == "[::1]:3000"

    def test_only_the_named_connection_is_shut_down(self) -> None:
        """Its client reads the end at once; another connection to the same port is left."""
        with socket.create_server(("127.0.0.1", 0)) as server:
            port = server.getsockname()[1]
            with (
                socket.create_connection(("127.0.0.1", port)) as cut,
                socket.create_connection(("127.0.0.1", port)) as kept,
            ):
                first, _ = server.accept()
                second, _ = server.accept()
                with first, second:
                    named = (_address(cut.getsockname()), _address(first.getsockname()))
                    assert _shut_down({named}) == 1
                    assert cut.recv(1) == b""
                    second.sendall(b"x")
                    assert kept.recv(1) == b"x"

    def test_over_the_limit_and_growing_cancels_every_connection_once(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Over and growing: all cancelled with "memory". Over but falling: left alone."""
        readings = iter([10, 200, 150, 120, 90])
        monkeypatch.setattr(websocket, "resident_bytes", lambda: next(readings, 90))
        monkeypatch.setattr(websocket, "MEMORY_POLL", 0.001)
        monkeypatch.setattr(websocket, "_shut_down", len)
        sockets = WebSockets(
            recorder=None,  # type: ignore[arg-type]
            drain=Drain(lambda: True),
            limits=SocketLimits(
                max_message_bytes=4, idle_timeout=1, max_connections=9, memory_limit=100
            ),
        )

        async def scenario() -> list[object]:
            reasons: list[object] = []

            async def connection() -> None:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError as cancelled:
                    reasons.append(cancelled.args)

            first = asyncio.ensure_future(connection())
            sockets._tasks[first] = ("127.0.0.1:1", "127.0.0.1:2")
            guard = asyncio.ensure_future(sockets._watch_memory())
            await asyncio.wait({first}, timeout=1)
            sockets._tasks.clear()
            later = asyncio.ensure_future(connection())  # opened while memory falls
            sockets._tasks[later] = ("127.0.0.1:3", "127.0.0.1:2")
            await asyncio.sleep(0.05)
            assert not later.done()
            sockets._tasks.clear()
            later.cancel()
            await asyncio.wait({guard}, timeout=1)
            return reasons

        assert asyncio.run(scenario())[0] == (MEMORY,)
