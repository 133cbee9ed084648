"""App: routing, auth, limits and the record of each request, without a server."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import re
import time
from typing import TYPE_CHECKING, Any

import pytest
from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from echod.http.bodies import DISCARD_BYTES, discard
from echod.http.problems import Problem
from tests.support.harness import FakeHeaders, FakeProto, FakeScope, Harness, MakeHarness
from tests.support.patterns import UUID4
from tests.support.users import ALICE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def problem(proto: FakeProto) -> dict[str, Any]:
    """The problem+json body of the response, checked for its content type."""
    assert proto.response.header("content-type") == "application/problem+json"
    body: dict[str, Any] = json.loads(proto.response.body)
    return body


class TestEcho:
    @pytest.mark.parametrize("method", ["POST", "PUT"])
    def test_object_is_echoed(self, harness: Harness, method: str) -> None:
        """POST and PUT echo the object with echoed: true."""
        proto = harness.authed(method, body=b'{"foo": "bar"}')
        assert proto.response.status == 200
        assert proto.response.header("content-type") == "application/json"
        assert proto.response.body == b'{"foo":"bar","echoed":true}\n'

    def test_bad_json_is_a_problem_with_the_request_id(self, harness: Harness) -> None:
        """A 400 in RFC 9457 form names the request and carries its id."""
        proto = harness.authed(body=b"{nope", **{"x-request-id": "abc-1"})
        assert proto.response.status == 400
        body = problem(proto)
        assert body["type"] == "about:blank"
        assert body["title"] == "Bad Request"
        assert body["status"] == 400
        assert body["instance"] == "/api/echo"
        assert body["requestId"] == "abc-1"
        assert "not valid JSON" in body["detail"]

    def test_content_type_is_not_required(self, harness: Harness) -> None:
        """curl --data sends a form type; the JSON body is echoed anyway."""
        proto = harness.authed(
            body=b'{"foo": "bar"}', **{"content-type": "application/x-www-form-urlencoded"}
        )
        assert proto.response.status == 200

    def test_a_gzip_body_is_decoded_first(self, harness: Harness) -> None:
        """A gzip body is echoed as the object it holds."""
        proto = harness.authed(body=gzip.compress(b'{"a": 1}'), **{"content-encoding": "gzip"})
        assert (proto.response.status, proto.response.body) == (200, b'{"a":1,"echoed":true}\n')

    def test_a_truncated_gzip_body_is_a_400_naming_gzip(self, harness: Harness) -> None:
        """Two bytes of a gzip header are not mistaken for bad JSON."""
        proto = harness.authed(body=b"\x1f\x8b", **{"content-encoding": "gzip"})
        assert proto.response.status == 400
        assert "not valid gzip" in problem(proto)["detail"]

    def test_an_unknown_coding_is_a_415_listing_those_decoded(self, harness: Harness) -> None:
        """RFC 9110 section 15.5.16: the 415 says which codings would do."""
        proto = harness.authed(body=b"x", **{"content-encoding": "compress"})
        assert proto.response.status == 415
        assert proto.response.header("accept-encoding") == "gzip, deflate, br, zstd"
        assert "compress" in problem(proto)["detail"]

    def test_identity_encoding_is_fine(self, harness: Harness) -> None:
        """Content-Encoding: identity means no encoding."""
        assert harness.authed(body=b"{}", **{"content-encoding": "identity"}).response.status == 200


class StalledProto(FakeProto):
    """A client that sends its head, then too little of its body, and waits."""

    #: How many times the body was begun to be read in chunks.
    iterations = 0

    def __call__(self) -> Any:
        """The body of declared length: granian's future, which never completes here."""
        return asyncio.get_running_loop().create_future()

    def __aiter__(self) -> AsyncIterator[bytes]:
        """A body without a length: one chunk, then nothing."""
        self.iterations += 1

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"a":'
            await asyncio.Event().wait()

        return chunks()


def stalled(harness: Harness, headers: dict[str, str]) -> tuple[FakeProto, float]:
    """Send a body that never arrives whole, through an app that watches the deadlines."""
    scope = FakeScope(
        "POST", "/api/echo", FakeHeaders({"host": "echod.test", "authorization": ALICE, **headers})
    )
    proto = StalledProto()

    async def scenario() -> float:
        harness.app.start(asyncio.get_running_loop())
        began = time.monotonic()
        await harness.app.__rsgi__(scope, proto)  # type: ignore[arg-type]
        return time.monotonic() - began

    return proto, asyncio.run(scenario())


class TestBodyTimeout:
    @pytest.mark.parametrize(
        "headers", [{"content-length": "100"}, {}], ids=["declared-length", "chunked"]
    )
    def test_a_body_too_slow_is_a_408_that_closes_the_connection(
        self, make_harness: MakeHarness, headers: dict[str, str]
    ) -> None:
        """Past --body-timeout from the request's arrival, the answer is 408, logged and counted."""
        harness = make_harness(body_timeout=1.0)
        proto, took = stalled(harness, headers)
        assert proto.response.status == 408
        assert proto.response.header("connection") == "close"
        assert problem(proto)["detail"] == "the body did not arrive within 1 s (--body-timeout)"
        assert 1.0 <= took < 2.0
        [line] = harness.log_lines()
        assert (line["status"], line["level"]) == (408, "warning")
        assert harness.count("408", "POST", "/api/echo") == 1
        assert harness.app._reads == {}, "nothing is left to watch"

    def test_a_body_in_time_is_not_ended(self, make_harness: MakeHarness) -> None:
        """A read that completes is no longer watched."""
        harness = make_harness(body_timeout=1.0)
        assert harness.authed(body=b"{}").response.status == 200
        assert harness.app._reads == {}


class TestBodyLimit:
    def test_declared_length_over_the_limit_is_refused_unread(
        self, make_harness: MakeHarness
    ) -> None:
        """A Content-Length over the limit is a 413 before any byte is read."""
        small = make_harness(max_body_bytes=10)
        proto = small.authed(body=b'{"a": "0123456789"}')
        assert proto.response.status == 413
        assert proto.answers_before_reading == 1, "answered first, then the body is dropped"
        assert "limit of 10 bytes" in problem(proto)["detail"]
        assert "connection" not in proto.response.headers, "a body this small is dropped whole"

    def test_a_declared_length_too_long_to_drop_closes_the_connection(
        self, make_harness: MakeHarness
    ) -> None:
        """Past DISCARD_BYTES the 413 says Connection: close: the rest is not all read."""
        small = make_harness(max_body_bytes=10)
        declared = str(DISCARD_BYTES + 1)
        proto = small.authed(body=b"{}", **{"content-length": declared})
        assert proto.response.status == 413
        assert proto.response.header("connection") == "close"


class TestUnreadBody:
    """A request answered before its body was read has the rest read and dropped.

    Closing a connection with unread bytes makes the kernel send a reset, which a proxy
    in front may see before the answer (tests/proxies has the same through real ones).
    """

    @pytest.mark.parametrize(
        ("method", "path", "headers", "status"),
        [
            ("POST", "/api/echo", {}, 401),
            ("POST", "/api/nope", {"authorization": ALICE}, 404),
            ("POST", "/health", {"authorization": ALICE}, 405),
            ("POST", "/api/echo", {"authorization": ALICE, "content-encoding": "lzw"}, 415),
        ],
        ids=["401", "404", "405", "415"],
    )
    def test_every_early_answer_drops_the_body_after_it(
        self,
        harness: Harness,
        method: str,
        path: str,
        headers: dict[str, str],
        status: int,
    ) -> None:
        """The answer goes first, then the whole body is read."""
        chunks = [b"x" * 100] * 5
        proto = FakeProto(chunks=chunks)
        headers = {**headers, "transfer-encoding": "chunked"}
        harness.request(method, path, headers=headers, proto=proto)
        assert proto.response.status == status
        assert proto.answers_before_reading == 1
        assert proto.chunks_read == 5

    def test_a_body_refused_part_way_is_read_to_its_end(self, make_harness: MakeHarness) -> None:
        """A chunked body over the limit: 413 once past it, then the rest is dropped."""
        small = make_harness(max_body_bytes=10)
        proto = FakeProto(chunks=[b"x" * 8] * 4)
        small.request(headers={"authorization": ALICE, "transfer-encoding": "chunked"}, proto=proto)
        assert proto.response.status == 413
        assert proto.chunks_read > 4, "two chunks to pass the limit, then the four again"

    def test_without_a_body_nothing_is_read(self, harness: Harness) -> None:
        """A GET without Content-Length or Transfer-Encoding is answered, and that is all."""
        proto = harness.request("GET", "/api/nope", headers={"authorization": ALICE})
        assert proto.response.status == 404
        assert not proto.body_read

    def test_over_http_2_the_body_is_left(self, harness: Harness) -> None:
        """An HTTP/2 stream's unread body costs that stream only."""
        proto = FakeProto(chunks=[b"x"] * 3)
        harness.request(
            "POST", "/api/nope", headers={"content-length": "3"}, proto=proto, version="2"
        )
        assert proto.response.status == 401
        assert not proto.body_read

    def test_a_slow_body_is_not_waited_for(self, make_harness: MakeHarness) -> None:
        """After a 408 the connection closes at once: the client is too slow to wait for."""
        harness = make_harness(body_timeout=0.5)
        proto, _ = stalled(harness, {"transfer-encoding": "chunked"})
        assert proto.response.status == 408
        assert isinstance(proto, StalledProto)
        assert proto.iterations == 1, "the reader's only"


class TestDiscard:
    def test_it_stops_at_its_bound_in_bytes(self) -> None:
        """Past max_bytes it stops reading: the rest is left, and the connection closes."""
        proto = FakeProto(chunks=[b"x" * 10] * 10)
        assert asyncio.run(discard(proto, max_bytes=25)) == 30  # type: ignore[arg-type]
        assert proto.chunks_read == 3

    def test_it_stops_at_its_bound_in_time(self) -> None:
        """A client that sends too slowly is not waited for past the bound."""

        class Trickle(FakeProto):
            def __aiter__(self) -> Any:
                async def chunks() -> Any:
                    while True:
                        await asyncio.sleep(0.05)
                        yield b"x"

                return chunks()

        started = time.monotonic()
        assert 0 < asyncio.run(discard(Trickle(), seconds=0.3)) < 10  # type: ignore[arg-type]
        assert time.monotonic() - started < 2

    def test_a_body_begun_is_read_on_from_the_protocol_itself(self) -> None:
        """granian's protocol refuses a second __aiter__ once a read began; it iterates itself."""

        class Begun:
            def __init__(self) -> None:
                self.left = [b"ab", b"c", b""]

            def __aiter__(self) -> Any:
                raise ProtocolError("body already consumed")

            async def __anext__(self) -> bytes:
                if not self.left:
                    raise StopAsyncIteration
                return self.left.pop(0)

        assert asyncio.run(discard(Begun())) == 3  # type: ignore[arg-type]

    def test_a_client_that_leaves_ends_it(self) -> None:
        """The protocol closed: nothing more to read."""

        class Gone(FakeProto):
            def __aiter__(self) -> Any:
                async def chunks() -> Any:
                    yield b"xy"
                    raise ProtocolClosed("closed")

                return chunks()

        assert asyncio.run(discard(Gone())) == 2  # type: ignore[arg-type]

    def test_undeclared_length_is_counted_while_reading(self, make_harness: MakeHarness) -> None:
        """Chunked bodies are refused as soon as they pass the limit."""
        small = make_harness(max_body_bytes=10)
        chunks = [b'{"a": ', b'"0123', b"456789", b'"}']
        proto = small.request(headers={"authorization": ALICE}, proto=FakeProto(chunks=chunks))
        assert proto.response.status == 413

    @pytest.mark.parametrize(
        ("chunks", "status"),
        [([b'{"a":', b" 123}"], 200), ([b'{"a":', b" 1234}"], 413)],
        ids=["at-the-limit", "one-byte-over"],
    )
    def test_undeclared_length_is_held_to_the_same_inclusive_limit(
        self, make_harness: MakeHarness, chunks: list[bytes], status: int
    ) -> None:
        """A chunked body of exactly the limit is echoed; one byte more is a 413."""
        small = make_harness(max_body_bytes=10)
        proto = small.request(headers={"authorization": ALICE}, proto=FakeProto(chunks=chunks))
        assert proto.response.status == status

    def test_the_413_names_the_limit(self, make_harness: MakeHarness) -> None:
        """A chunked body over the limit is refused with a detail that gives the limit."""
        small = make_harness(max_body_bytes=10)
        proto = small.request(
            headers={"authorization": ALICE}, proto=FakeProto(chunks=[b'{"a":', b" 1234}"])
        )
        assert problem(proto)["detail"] == "the body is over the limit of 10 bytes"

    def test_undeclared_length_within_the_limit_is_joined(self, harness: Harness) -> None:
        """Chunks are put back together in order."""
        proto = harness.request(
            headers={"authorization": ALICE}, proto=FakeProto(chunks=[b'{"a"', b": 1", b"}"])
        )
        assert proto.response.body == b'{"a":1,"echoed":true}\n'

    def test_body_exactly_at_the_limit_is_accepted(self, make_harness: MakeHarness) -> None:
        """The limit is inclusive."""
        small = make_harness(max_body_bytes=9)
        assert small.authed(body=b'{"a": 1}' + b" ").response.status == 200

    def test_malformed_content_length_is_a_400(self, harness: Harness) -> None:
        """The app never trusts the header to be a number."""
        proto = harness.authed(body=b"{}", **{"content-length": "12, 12"})
        assert proto.response.status == 400

    def test_malformed_content_length_is_named_in_the_detail(self, harness: Harness) -> None:
        """The 400 quotes the Content-Length it could not read as a number."""
        proto = harness.authed(body=b"{}", **{"content-length": "12, 12"})
        assert problem(proto)["detail"] == "Content-Length '12, 12' is not a number of bytes"

    def test_client_leaving_mid_body_is_recorded_as_499(self, harness: Harness) -> None:
        """No answer can be sent; the request is still logged and counted."""
        proto = harness.request(
            headers={"authorization": ALICE, "content-length": "100"}, proto=FakeProto(closed=True)
        )
        assert proto.responses == []
        assert harness.count("499", "POST", "/api/echo") == 1


class TestRouting:
    def test_unknown_path_is_404_after_auth(self, harness: Harness) -> None:
        """Unknown paths are authenticated, then 404."""
        assert harness.request("GET", "/nope").response.status == 401
        proto = harness.authed("GET", "/nope")
        assert proto.response.status == 404
        assert problem(proto)["instance"] == "/nope"

    @pytest.mark.parametrize(
        ("method", "path", "allow"),
        [
            ("GET", "/api/echo", "POST, PUT"),
            ("DELETE", "/api/echo", "POST, PUT"),
            ("HEAD", "/api/echo", "POST, PUT"),
            ("POST", "/health", "GET, HEAD"),
            ("PUT", "/metrics", "GET, HEAD"),
            ("DELETE", "/ready", "GET, HEAD"),
        ],
        ids=lambda value: str(value).replace("/", ""),
    )
    def test_wrong_method_is_405_with_allow(
        self, harness: Harness, method: str, path: str, allow: str
    ) -> None:
        """A known path with another method names the allowed ones."""
        assert harness.request(method, path).response.status == 401
        proto = harness.authed(method, path)
        assert proto.response.status == 405
        assert proto.response.header("allow") == allow

    def test_the_405_detail_names_the_method_and_the_allowed_ones(self, harness: Harness) -> None:
        """The detail says which method was refused and which to use instead."""
        proto = harness.authed("DELETE", "/api/echo")
        assert problem(proto)["detail"] == "DELETE is not allowed here; use POST, PUT"

    @pytest.mark.parametrize("path", ["/api/echo", "/api/raw"])
    def test_a_handshake_that_lost_its_upgrade_is_a_426_that_says_so(
        self, harness: Harness, path: str
    ) -> None:
        """A GET with Sec-WebSocket-Key but no Upgrade: a proxy dropped the hop-by-hop headers.

        Before, it was a bare 405 that said nothing of why.
        """
        key = {"sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13"}
        proto = harness.request("GET", path, headers={"authorization": ALICE, **key})
        assert proto.response.status == 426
        assert proto.response.header("upgrade") == "websocket"
        detail = problem(proto)["detail"]
        assert "arrived without Upgrade: websocket" in detail
        assert "proxy" in detail
        assert problem(proto)["title"] == "Upgrade Required"

    def test_a_key_on_a_route_without_websockets_is_still_a_405(self, harness: Harness) -> None:
        """Only the WebSocket routes diagnose a lost upgrade."""
        key = {"authorization": ALICE, "sec-websocket-key": "a"}
        assert harness.request("GET", "/api/bytes/x/y", headers=key).response.status == 404
        assert harness.request("POST", "/api/stream", headers=key).response.status == 405

    def test_trailing_slash_and_case_are_different_paths(self, harness: Harness) -> None:
        """Routes match exactly; /api/echo/ and /API/echo are unknown."""
        assert harness.authed(path="/api/echo/", body=b"{}").response.status == 404
        assert harness.authed(path="/API/echo", body=b"{}").response.status == 404


class TestAuth:
    def test_missing_credentials_get_the_basic_challenge(self, harness: Harness) -> None:
        """RFC 7617 challenge with realm and charset."""
        proto = harness.request(body=b"{}")
        assert proto.response.status == 401
        assert proto.response.header("www-authenticate") == 'Basic realm="echod", charset="UTF-8"'
        assert problem(proto)["title"] == "Unauthorized"

    def test_wrong_password_is_401(self, harness: Harness) -> None:
        """bcrypt refuses it."""
        header = "Basic " + base64.b64encode(b"alice:nope").decode()
        proto = harness.request(body=b"{}", headers={"authorization": header})
        assert proto.response.status == 401
        assert "wrong user name or password" in problem(proto)["detail"]

    def test_body_is_not_read_before_auth(self, harness: Harness) -> None:
        """Unauthenticated clients get their 401 before any byte of their body is read.

        Then the body is read and dropped (within DISCARD_BYTES and DISCARD_SECONDS),
        never kept, so that closing the connection sends no reset before the 401.
        """
        proto = harness.request(body=b"{}")
        assert proto.response.status == 401
        assert proto.answers_before_reading == 1

    def test_hashing_queue_full_is_503_with_retry_after(self, harness: Harness) -> None:
        """Overload of new credentials is a 503 the client may retry."""
        harness.app._auth._max_pending = 0  # a full queue
        header = "Basic " + base64.b64encode(b"bob:builder").decode()
        proto = harness.request(body=b"{}", headers={"authorization": header})
        assert proto.response.status == 503
        assert proto.response.header("retry-after") == "1"


class TestPublicEndpoints:
    @pytest.mark.parametrize("method", ["GET", "HEAD"])
    def test_health_needs_no_auth_and_is_not_recorded(self, harness: Harness, method: str) -> None:
        """Probes are answered without credentials, logs or metrics."""
        proto = harness.request(method, "/health")
        assert proto.response.status == 200
        if method == "GET":
            assert proto.response.body == b'{"status":"ok"}\n'
        assert harness.log_lines() == []
        assert harness.count("200", method, "/health") is None

    def test_ready_turns_503_when_draining(self, harness: Harness) -> None:
        """Readiness follows the shared flag."""
        assert harness.request("GET", "/ready").response.status == 200
        harness.ready = False
        proto = harness.request("GET", "/ready")
        assert proto.response.status == 503
        assert problem(proto)["detail"] == "echod is shutting down"
        assert harness.log_lines() == []

    def test_metrics_render_what_was_counted(self, harness: Harness) -> None:
        """The counter of a request shows in the next scrape, which is not counted itself."""
        harness.authed(body=b"{}")
        proto = harness.request("GET", "/metrics")
        assert proto.response.status == 200
        assert proto.response.header(
            "content-type",
        ).startswith("text/plain")  # type: ignore[union-attr]
        text = proto.response.body.decode()
        assert 'http_requests_total{method="POST",path="/api/echo",status="200"} 1.0' in text
        assert 'path="/metrics"' not in text


class TestRecord:
    def test_each_request_is_logged_once_with_its_facts(self, harness: Harness) -> None:
        """The log line repeats the request id, user, status and route."""
        harness.authed(body=b"{}", **{"x-request-id": "req.1:a-b_c"})
        [line] = harness.log_lines()
        assert line["status"] == 200
        assert line["requestId"] == "req.1:a-b_c"
        assert line["userId"] == "alice"
        assert line["method"] == "POST"
        assert line["path"] == "/api/echo"
        assert line["message"] == "POST /api/echo HTTP/1.1"
        assert line["remote"] == "127.0.0.1:40000"
        assert line["level"] == "info"

    def test_unauthenticated_requests_log_no_user(self, harness: Harness) -> None:
        """The user is only named once verified."""
        harness.request(
            body=b"{}", headers={"authorization": "Basic " + base64.b64encode(b"eve:x").decode()}
        )
        [line] = harness.log_lines()
        assert line["userId"] is None
        assert line["level"] == "warning"

    def test_credentials_never_reach_the_log(self, harness: Harness) -> None:
        """Neither the password nor the Authorization header is written."""
        harness.authed(body=b"{}")
        harness.request(
            body=b"{}",
            headers={"authorization": "Basic " + base64.b64encode(b"alice:hunter2").decode()},
        )
        text = json.dumps(harness.log_lines())
        assert "wonderland" not in text
        assert "hunter2" not in text
        assert ALICE.split()[1] not in text

    def test_unmatched_paths_share_one_series(self, harness: Harness) -> None:
        """A scan of random URLs adds no series."""
        for n in range(20):
            harness.authed("GET", f"/scan/{n}")
        assert harness.count("404", "GET", "unmatched") == 20

    def test_request_id_and_response_time_are_on_every_answer(self, harness: Harness) -> None:
        """Both headers are set, on success and on errors."""
        for proto in (
            harness.authed(body=b"{}"),
            harness.request(body=b"{}"),
            harness.authed("GET", "/x"),
        ):
            assert UUID4.fullmatch(proto.response.header("x-request-id") or "")
            assert re.fullmatch(r"\d+\.\d{3}ms", proto.response.header("x-response-time") or "")

    @pytest.mark.parametrize(
        "given",
        ["", "a" * 129, "has space", "new\nline", "é", "semi;colon", "a/b"],
        ids=["empty", "too-long", "space", "newline", "non-ascii", "semicolon", "slash"],
    )
    def test_unsafe_request_ids_are_replaced(self, harness: Harness, given: str) -> None:
        """Only 1-128 of [A-Za-z0-9._:-] is kept; anything else gets a UUID4."""
        proto = harness.authed(body=b"{}", **{"x-request-id": given})
        assert UUID4.fullmatch(proto.response.header("x-request-id") or "")

    def test_probe_answers_carry_a_request_id(self, harness: Harness) -> None:
        """Even /health returns X-Request-ID."""
        proto = harness.request("GET", "/health", headers={"x-request-id": "probe-1"})
        assert proto.response.header("x-request-id") == "probe-1"


class TestHttpRules:
    @pytest.mark.parametrize(
        ("path", "headers", "status"),
        [
            ("/health", {}, 200),
            ("/ready", {}, 200),
            ("/openapi.json", {}, 200),
            ("/nope", {}, 401),
            ("/nope", {"authorization": ALICE}, 404),
        ],
        ids=["health", "ready", "openapi", "401", "404"],
    )
    def test_head_has_get_s_length_and_no_body(
        self, harness: Harness, path: str, headers: dict[str, str], status: int
    ) -> None:
        """RFC 9110 9.3.2: HEAD answers as GET would, with Content-Length and without a body."""
        get = harness.request("GET", path, headers=headers).response
        head = harness.request("HEAD", path, headers=headers).response
        assert get.status == head.status == status
        assert head.body == b""
        assert head.header("content-length") == str(len(get.body))
        assert head.header("content-type") == get.header("content-type")

    def test_head_of_metrics_has_a_length_and_no_body(self, harness: Harness) -> None:
        """The scrape's length changes from one to the next; HEAD still sends none of it."""
        head = harness.request("HEAD", "/metrics").response
        assert head.body == b""
        assert int(head.header("content-length") or 0) > 1000

    @pytest.mark.parametrize(
        ("method", "path", "authorized"),
        [
            ("GET", "/health", False),
            ("GET", "/ready", False),
            ("GET", "/metrics", False),
            ("POST", "/api/echo", True),
            ("POST", "/api/echo", False),
            ("GET", "/api/nope", True),
        ],
        ids=["health", "ready", "metrics", "echo", "401", "404"],
    )
    def test_probes_metrics_and_api_answers_are_never_stored(
        self, harness: Harness, method: str, path: str, authorized: bool
    ) -> None:
        """Cache-Control: no-store, so that a cache in front never keeps /ready at 200."""
        headers = {"authorization": ALICE} if authorized else {}
        proto = harness.request(method, path, b"{}" if method == "POST" else b"", headers)
        assert proto.response.header("cache-control") == "no-store"

    def test_ready_while_draining_is_not_stored(self, harness: Harness) -> None:
        """The 503 of a draining instance is not kept either."""
        harness.ready = False
        assert harness.request("GET", "/ready").response.header("cache-control") == "no-store"

    def test_metrics_vary_on_accept(self, harness: Harness) -> None:
        """The format follows Accept, so caches must key on it."""
        assert harness.request("GET", "/metrics").response.header("vary") == "accept"

    @pytest.mark.parametrize(
        ("method", "path", "authorized"),
        [("GET", "/health", False), ("POST", "/api/echo", True), ("POST", "/api/echo", False)],
        ids=["health", "echo", "problem"],
    )
    def test_json_answers_end_with_one_newline(
        self, harness: Harness, method: str, path: str, authorized: bool
    ) -> None:
        """curl's prompt lands on its own line; the body is still exactly one JSON document."""
        headers = {"authorization": ALICE} if authorized else {}
        body = harness.request(method, path, b'{"a":1}', headers).response.body
        assert body.endswith(b"}\n")
        assert not body.endswith(b"\n\n")
        json.loads(body)

    def test_an_http_1_1_request_without_host_is_a_logged_and_counted_400(
        self, harness: Harness
    ) -> None:
        """RFC 9112 3.2 requires Host in HTTP/1.1; probes too are refused without it."""
        assert harness.request("GET", "/health", host=None).response.status == 400
        proto = harness.request("POST", "/api/echo", b"{}", {"authorization": ALICE}, host=None)
        assert proto.response.status == 400
        assert "Host header" in problem(proto)["detail"]
        lines = harness.log_lines()
        assert [line["status"] for line in lines] == [400, 400]
        assert "Host header" in lines[0]["detail"]
        assert harness.count("400", "GET", "/health") == 1

    @pytest.mark.parametrize("version", ["1", "2"], ids=["http-1.0", "http-2"])
    def test_host_may_be_absent_outside_http_1_1(self, harness: Harness, version: str) -> None:
        """HTTP/1.0 has no Host rule, and HTTP/2 carries :authority instead."""
        proto = harness.request("GET", "/health", host=None, version=version)
        assert proto.response.status == 200

    @pytest.mark.parametrize(
        ("version", "written"), [("1", "1.0"), ("1.1", "1.1"), ("2", "2")], ids=str
    )
    def test_the_log_names_the_http_version_in_full(
        self, harness: Harness, version: str, written: str
    ) -> None:
        """granian says "1" for HTTP/1.0; the log says HTTP/1.0."""
        harness.request("GET", "/nope", version=version, headers={"authorization": ALICE})
        [line] = harness.log_lines()
        assert line["message"] == f"GET /nope HTTP/{written}"

    def test_413_is_content_too_large(self, make_harness: MakeHarness) -> None:
        """RFC 9110's name for 413, whatever the Python version."""
        small = make_harness(max_body_bytes=1)
        assert problem(small.authed(body=b"{}"))["title"] == "Content Too Large"


class TestUnknownLabels:
    def test_a_status_the_metrics_do_not_list_is_logged_and_counted_as_other(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No status can raise after the answer: it is recorded under the bounded other."""

        class Unregistered(Problem):
            status = 103  # registered, but never one of echod's answers: no label of its own

        def refuse(_body: bytes) -> bytes:
            raise Unregistered("a status of its own")

        monkeypatch.setattr("echod.http.echoes.echo", refuse)
        assert harness.authed(body=b"{}").response.status == 103
        [line] = harness.log_lines()
        assert (line["status"], line["level"]) == (103, "info")
        assert harness.count("other", "POST", "/api/echo") == 1

    def test_a_method_the_metrics_do_not_list_is_counted_as_other(self, harness: Harness) -> None:
        """An unknown method on a known path is a 405 under the method label other."""
        assert harness.authed("BREW", "/api/echo").response.status == 405
        assert harness.count("405", "other", "/api/echo") == 1
        [line] = harness.log_lines()
        assert line["method"] == "BREW"


class TestFailures:
    def test_an_unexpected_error_is_a_500_logged_with_its_traceback(
        self, harness: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The edge catches it, answers problem+json and logs one error line."""

        def explode(_body: bytes) -> bytes:
            raise RuntimeError("kaput")

        monkeypatch.setattr("echod.http.echoes.echo", explode)
        proto = harness.authed(body=b"{}")
        assert proto.response.status == 500
        body = problem(proto)
        assert "kaput" not in body["detail"]
        [line] = harness.log_lines()
        assert line["level"] == "error"
        assert line["error"] == "RuntimeError('kaput')"
        assert "explode" in line["traceback"]
        assert harness.count("500", "POST", "/api/echo") == 1
