"""CORS: which origins are allowed, the preflight's headers, and the headers every answer adds."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import pytest

import echod.http
from echod.http.answers import WithHeaders
from echod.http.controls import header_of
from echod.http.cors import ALLOW_HEADERS, CONTROL_HEADERS, EXPOSE_HEADERS, MAX_AGE, Cors
from echod.routes import ROUTES
from tests.support.harness import FakeHeaders

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine

    from echod.routes import Route

HTTP_PACKAGE = Path(echod.http.__file__).parent
APP = "https://app.example"
OTHER = "https://app.example:8443"
#: The headers a route's answer comes with before CORS adds its own.
OWN = [("content-type", "application/json"), ("x-request-id", "rid-1")]


class RecordingProto:
    """An RSGI HTTP protocol that hands out a body and records each call made to answer."""

    def __init__(self) -> None:
        """Record nothing yet; ``transport`` is what a stream answer hands out."""
        self.calls: list[tuple[str, int, list[tuple[str, str]], bytes | None]] = []
        self.transport = object()

    async def __call__(self) -> bytes:
        """Return the whole body."""
        return b"whole body"

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Yield the body in two chunks."""

        async def chunks() -> AsyncIterator[bytes]:
            yield b"one"
            yield b"two"

        return chunks()

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Record an answer with a body."""
        self.calls.append(("bytes", status, headers, body))

    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None:
        """Record an answer without a body."""
        self.calls.append(("empty", status, headers, None))

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> object:
        """Record a stream answer and hand out its transport."""
        self.calls.append(("stream", status, headers, None))
        return self.transport


def wrap(
    cors: Cors, method: str = "GET", **headers: str
) -> tuple[RecordingProto, object, str | None]:
    """The protocol given, and what ``cors.wrap`` made of it for a request with ``headers``."""
    proto = RecordingProto()
    wrapped, preflight = cors.wrap(cast("Any", FakeHeaders(headers)), method, cast("Any", proto))
    return proto, wrapped, preflight


def route(path: str) -> Route:
    """The route of ``path``, which must exist."""
    return next(each for each in ROUTES if each.path == path)


class TestAllows:
    def test_a_listed_origin_is_allowed(self) -> None:
        """An origin on the list may call the API."""
        assert Cors([APP, OTHER]).allows(APP)
        assert Cors([APP, OTHER]).allows(OTHER)

    @pytest.mark.parametrize("origin", ["HTTPS://APP.EXAMPLE", "https://App.Example"])
    def test_origins_are_compared_without_case(self, origin: str) -> None:
        """Scheme and host are case-insensitive: the origin sent is lower-cased to compare."""
        assert Cors([APP]).allows(origin)

    @pytest.mark.parametrize(
        "origin",
        [
            "https://evil.example",
            "http://app.example",
            "https://app.example:443",
            "https://app.example.evil",
            "https://sub.app.example",
            "null",
            "",
        ],
    )
    def test_an_unlisted_origin_is_not_allowed(self, origin: str) -> None:
        """Another scheme, port, host or suffix is another origin."""
        assert not Cors([APP, OTHER]).allows(origin)

    @pytest.mark.parametrize("origin", [APP, "https://evil.example", "null", ""])
    def test_star_allows_every_origin(self, origin: str) -> None:
        """* allows any origin at all."""
        assert Cors(["*"]).allows(origin)

    def test_no_origins_allow_none(self) -> None:
        """An empty list allows nothing."""
        assert not Cors([]).allows(APP)


class TestWrap:
    def test_no_origin_leaves_the_protocol_as_is(self) -> None:
        """A request without Origin is answered as if CORS were off."""
        proto, wrapped, preflight = wrap(Cors([APP]))
        assert wrapped is proto
        assert preflight is None

    @pytest.mark.parametrize("method", ["GET", "OPTIONS"])
    def test_an_unlisted_origin_leaves_the_protocol_as_is(self, method: str) -> None:
        """Another origin gets no CORS headers, not even on what looks like a preflight."""
        proto, wrapped, preflight = wrap(
            Cors([APP]),
            method,
            origin="https://evil.example",
            **{"access-control-request-method": "POST"},
        )
        assert wrapped is proto
        assert preflight is None

    @pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "DELETE"])
    def test_a_listed_origin_gets_a_wrapped_protocol(self, method: str) -> None:
        """Not a preflight: answered through a protocol that adds the answer's CORS headers."""
        cors = Cors([APP])
        proto, wrapped, preflight = wrap(cors, method, origin=APP)
        assert isinstance(wrapped, WithHeaders)
        assert preflight is None
        wrapped.response_bytes(200, list(OWN), b"{}")
        assert proto.calls == [("bytes", 200, [*OWN, *cors.answer(APP)], b"{}")]

    def test_options_without_a_request_method_is_left_as_is(self) -> None:
        """OPTIONS from a listed origin that is no preflight is answered as if CORS were off."""
        proto, wrapped, preflight = wrap(Cors([APP]), "OPTIONS", origin=APP)
        assert wrapped is proto
        assert preflight is None

    def test_a_preflight_is_options_with_a_request_method(self) -> None:
        """OPTIONS with Origin and Access-Control-Request-Method is a preflight from the origin."""
        proto, wrapped, preflight = wrap(
            Cors([APP]), "OPTIONS", origin=APP, **{"access-control-request-method": "PUT"}
        )
        assert isinstance(wrapped, WithHeaders)
        assert preflight == APP
        wrapped.response_empty(204, [("x-request-id", "rid-1")])
        assert proto.calls == [("empty", 204, [("x-request-id", "rid-1")], None)], (
            "a preflight carries the headers preflight() gives it, not an answer's"
        )

    @pytest.mark.parametrize("method", ["GET", "POST", "PUT", "options"])
    def test_a_request_method_header_on_another_method_is_no_preflight(self, method: str) -> None:
        """Only the OPTIONS method makes a preflight."""
        _, wrapped, preflight = wrap(
            Cors([APP]), method, origin=APP, **{"access-control-request-method": "PUT"}
        )
        assert isinstance(wrapped, WithHeaders)
        assert preflight is None

    def test_star_wraps_any_origin_with_star(self) -> None:
        """With *, any origin is answered with allow-origin *."""
        proto, wrapped, preflight = wrap(Cors(["*"]), "GET", origin="https://anyone.example")
        assert isinstance(wrapped, WithHeaders)
        assert preflight is None
        wrapped.response_empty(204, [])
        assert ("access-control-allow-origin", "*") in proto.calls[0][2]


class TestPreflight:
    @pytest.mark.parametrize(
        ("path", "methods"),
        [
            ("/api/echo", "POST, PUT, GET"),
            ("/api/raw", "POST, PUT, GET"),
            ("/api/inspect", "GET, HEAD, POST, PUT, PATCH, DELETE"),
            ("/api/stream", "GET, HEAD"),
        ],
    )
    def test_the_headers_of_a_preflight_from_a_listed_origin(self, path: str, methods: str) -> None:
        """Origin, credentials, Vary, the route's methods (GET too for a WebSocket), headers."""
        assert Cors([APP, OTHER]).preflight(APP, route(path)) == [
            ("access-control-allow-origin", APP),
            ("access-control-allow-credentials", "true"),
            ("vary", "origin"),
            ("access-control-allow-methods", methods),
            ("access-control-allow-headers", ALLOW_HEADERS),
            ("access-control-max-age", "600"),
        ]

    def test_the_headers_of_a_preflight_with_star(self) -> None:
        """With *, the origin is * and credentials are never allowed."""
        assert Cors(["*"]).preflight(APP, route("/api/stream")) == [
            ("access-control-allow-origin", "*"),
            ("vary", "origin"),
            ("access-control-allow-methods", "GET, HEAD"),
            ("access-control-allow-headers", ALLOW_HEADERS),
            ("access-control-max-age", "600"),
        ]

    @pytest.mark.parametrize("each", ROUTES, ids=[each.path for each in ROUTES])
    def test_the_methods_are_those_of_the_route(self, each: Route) -> None:
        """Every route's methods are named, GET added once for a route that takes WebSockets."""
        headers = dict(Cors([APP]).preflight(APP, each))
        named = headers["access-control-allow-methods"].split(", ")
        assert named[: len(each.methods)] == list(each.methods)
        assert named[len(each.methods) :] == (["GET"] if each.websocket else [])

    def test_a_page_may_send_the_credentials_and_the_controls(self) -> None:
        """The allowed headers include auth, the type and coding, the request id and ranges."""
        allowed = set(ALLOW_HEADERS.split(", "))
        assert allowed >= {
            "authorization",
            "content-type",
            "content-encoding",
            "x-request-id",
            "range",
            "if-range",
            "if-none-match",
            "x-echod-status",
            "x-echod-delay-ms",
        }
        assert MAX_AGE == 600

    def test_every_control_a_handler_reads_may_be_sent(self) -> None:
        """Each control read anywhere in echod.http has its header among the allowed ones."""
        source = "".join(path.read_text() for path in HTTP_PACKAGE.glob("*.py"))
        names = set(re.findall(r'\.(?:integer|text|texts)\(\s*"([a-z_]+)"', source))
        names |= {"status", "delay_ms", "seed"}  # read by echod.http.faults for its callers
        assert len(names) > 10, names
        assert {header_of(name) for name in names} == set(CONTROL_HEADERS)
        assert set(CONTROL_HEADERS) <= set(ALLOW_HEADERS.split(", "))


class TestAnswer:
    def test_the_headers_of_an_answer_to_a_listed_origin(self) -> None:
        """Origin, credentials, Vary and the headers a page may read."""
        assert Cors([APP]).answer(APP) == [
            ("access-control-allow-origin", APP),
            ("access-control-allow-credentials", "true"),
            ("vary", "origin"),
            ("access-control-expose-headers", EXPOSE_HEADERS),
        ]

    def test_the_headers_of_an_answer_with_star(self) -> None:
        """With *, allow-origin is * and there is no credentials header."""
        headers = Cors(["*"]).answer(APP)
        assert headers == [
            ("access-control-allow-origin", "*"),
            ("vary", "origin"),
            ("access-control-expose-headers", EXPOSE_HEADERS),
        ]
        assert "access-control-allow-credentials" not in dict(headers)


class TestWithHeaders:
    EXTRA: ClassVar[list[tuple[str, str]]] = [
        ("access-control-allow-origin", APP),
        ("vary", "origin"),
    ]

    def test_response_bytes_appends_the_extra_headers(self) -> None:
        """The answer's own headers come first, then the CORS ones; the body is unchanged."""
        proto = RecordingProto()
        WithHeaders(cast("Any", proto), self.EXTRA).response_bytes(404, list(OWN), b"nope")
        assert proto.calls == [("bytes", 404, [*OWN, *self.EXTRA], b"nope")]

    def test_response_empty_appends_the_extra_headers(self) -> None:
        """An answer without a body carries them too."""
        proto = RecordingProto()
        WithHeaders(cast("Any", proto), self.EXTRA).response_empty(204, list(OWN))
        assert proto.calls == [("empty", 204, [*OWN, *self.EXTRA], None)]

    def test_response_stream_appends_the_extra_headers_and_hands_out_the_transport(
        self,
    ) -> None:
        """A stream starts with them, and is written through the protocol's own transport."""
        proto = RecordingProto()
        transport = WithHeaders(cast("Any", proto), self.EXTRA).response_stream(200, list(OWN))
        assert transport is proto.transport
        assert proto.calls == [("stream", 200, [*OWN, *self.EXTRA], None)]

    def test_the_callers_headers_are_not_changed(self) -> None:
        """The list handed in is left as it was; each answer gets its own."""
        proto = RecordingProto()
        wrapped = WithHeaders(cast("Any", proto), self.EXTRA)
        mine = list(OWN)
        wrapped.response_bytes(200, mine, b"")
        wrapped.response_empty(200, mine)
        assert mine == OWN
        assert self.EXTRA == [("access-control-allow-origin", APP), ("vary", "origin")]

    def test_reading_the_whole_body_passes_through(self) -> None:
        """Calling the protocol reads the body from the one it wraps."""
        wrapped = WithHeaders(cast("Any", RecordingProto()), self.EXTRA)
        reading = cast("Coroutine[Any, Any, bytes]", wrapped())
        assert asyncio.run(reading) == b"whole body"

    def test_reading_chunks_passes_through(self) -> None:
        """Iterating the protocol reads the chunks of the one it wraps."""
        wrapped = WithHeaders(cast("Any", RecordingProto()), self.EXTRA)

        async def read() -> list[bytes]:
            return [chunk async for chunk in cast("AsyncIterator[bytes]", wrapped.__aiter__())]

        assert asyncio.run(read()) == [b"one", b"two"]
