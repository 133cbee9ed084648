"""The headers the documents promise, on every answer: a walk over the route table.

Every answer carries ``X-Request-ID``. Every answer other than a probe's carries
``X-Response-Time`` and ``Cache-Control: no-store``: each route with every method,
with and without credentials, its errors, its forced statuses, the stream's head and
the CORS preflight. The exception, which granian forces, is a WebSocket handshake's
101 and its refusals: RSGI's ``accept()`` and ``close(status)`` carry no headers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from echod.routes import KNOWN_METHODS, ROUTES, Route
from tests.support.harness import FakeProto, Harness, MakeHarness
from tests.support.users import ALICE

if TYPE_CHECKING:
    from tests.support.harness import Response

APP = "https://app.example"
RESPONSE_TIME = re.compile(r"[0-9]+\.[0-9]{3}ms")
#: What a request to a route sends, so that it gets the route's own answer.
BODIES = {"/api/echo": b'{"a": 1}', "/api/raw": b"x", "/api/inspect": b""}
QUERIES = {"/api/stream": "?count=1&interval_ms=0", "/api/drip": "?duration_ms=0"}
#: Each probe's Cache-Control: the API document may be kept a few minutes.
PROBE_CACHING = {"/openapi.json": "max-age=300"}


def assert_promised(answer: Response, path: str, *, probe: bool) -> None:
    """The headers every answer to ``path`` carries, as the README and the OpenAPI say."""
    assert answer.header("x-request-id"), answer
    if probe:
        assert answer.header("cache-control") == PROBE_CACHING.get(path, "no-store"), answer
        return
    assert RESPONSE_TIME.fullmatch(answer.header("x-response-time") or ""), answer
    assert answer.header("cache-control") == "no-store", answer


def walk() -> list[Any]:
    """Every route with every method (and one that no RFC knows), with and without credentials."""
    cases = []
    for route in ROUTES:
        for method in (*KNOWN_METHODS, "BREW"):
            for authed in (False, True):
                name = f"{method} {route.path} {'alice' if authed else 'anonymous'}"
                cases.append(pytest.param(route, method, authed, id=name))
    return cases


@pytest.fixture
def app(make_harness: MakeHarness) -> Harness:
    """An app that lets https://app.example call it (preflights) and serves /auth/verify."""
    return make_harness(cors_origins=(APP,), auth_verify=True)


@pytest.mark.parametrize(("route", "method", "authed"), walk())
def test_every_route_and_method_carries_the_promised_headers(
    app: Harness, route: Route, method: str, authed: bool
) -> None:
    """200s, 401s and 405s alike; a probe asked with its methods carries its own."""
    path = route.path + QUERIES.get(route.path, "")
    headers = {"authorization": ALICE} if authed else {}
    body = BODIES.get(route.path, b"") if method not in {"GET", "HEAD"} else b""
    answer = app.request(method, path, body, headers).response
    probe = route.probe and method in route.methods
    assert_promised(answer, route.path, probe=probe)


@pytest.mark.parametrize(
    "route", [route for route in ROUTES if route.path.startswith("/api/")], ids=lambda r: r.path
)
def test_every_cors_preflight_carries_them(app: Harness, route: Route) -> None:
    """The 204 to a preflight, answered without credentials."""
    headers = {"origin": APP, "access-control-request-method": route.methods[0]}
    answer = app.request("OPTIONS", route.path, headers=headers).response
    assert answer.status == 204
    assert_promised(answer, route.path, probe=False)


ERRORS = [
    pytest.param("POST", "/api/echo", b"[]", {}, 400, id="400-not-an-object"),
    pytest.param("POST", "/api/echo", b"{", {}, 400, id="400-not-json"),
    pytest.param("GET", "/api/inspect?status=abc", b"", {}, 400, id="400-bad-control"),
    pytest.param("GET", "/api/stream?count=0", b"", {}, 400, id="400-bad-pace"),
    pytest.param("POST", "/api/echo", b"{}", {"authorization": "Basic eA=="}, 401, id="401"),
    pytest.param("GET", "/api/nope", b"", {}, 404, id="404-api"),
    pytest.param("GET", "/nope", b"", {}, 404, id="404-elsewhere"),
    pytest.param("POST", "/api/echo", b"{}", {"content-length": "2000000"}, 413, id="413-declared"),
    pytest.param("POST", "/api/echo", b"{}", {"content-encoding": "compress"}, 415, id="415"),
    pytest.param("POST", "/api/echo", b"{}", {"content-encoding": "gzip"}, 400, id="400-not-gzip"),
    pytest.param(
        "POST", "/api/echo", b"{}", {"accept-encoding": "identity;q=0"}, 406, id="406-echo"
    ),
    pytest.param("GET", "/api/inspect", b"", {"accept-encoding": "*;q=0"}, 406, id="406-inspect"),
    pytest.param("GET", "/api/bytes/10", b"", {"range": "bytes=0-1"}, 206, id="206-range"),
    pytest.param("GET", "/api/bytes/10", b"", {"if-none-match": "*"}, 304, id="304-not-modified"),
    pytest.param("GET", "/api/bytes/10", b"", {"range": "bytes=10-"}, 416, id="416-range"),
    pytest.param("GET", "/api/bytes/x", b"", {}, 400, id="400-bad-n"),
    pytest.param("GET", "/api/drip?chunks=0", b"", {}, 400, id="400-bad-drip"),
    pytest.param("GET", "/api/inspect?status=204", b"", {}, 204, id="204-forced"),
    pytest.param("GET", "/api/inspect?status=304", b"", {}, 304, id="304-forced"),
    pytest.param("GET", "/api/inspect?status=503", b"", {}, 503, id="503-forced"),
    pytest.param("HEAD", "/api/inspect?status=418", b"", {}, 418, id="418-forced-head"),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), ERRORS)
def test_every_error_and_forced_status_carries_them(
    app: Harness, method: str, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    """Problems of every kind, and the statuses a request asks for."""
    answer = app.request(method, path, body, {"authorization": ALICE, **headers}).response
    assert answer.status == status
    assert_promised(answer, path.partition("?")[0], probe=False)


def test_a_request_without_host_carries_them(app: Harness) -> None:
    """The 400 of an HTTP/1.1 request that names no host."""
    answer = app.request("POST", "/api/echo", b"{}", {"authorization": ALICE}, host=None).response
    assert answer.status == 400
    assert_promised(answer, "/api/echo", probe=False)


def test_a_500_carries_them(app: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected failure is still answered with the promised headers."""

    def explode(_body: bytes) -> bytes:
        raise RuntimeError("boom")

    monkeypatch.setattr("echod.http.echoes.echo", explode)
    answer = app.authed(body=b"{}").response
    assert answer.status == 500
    assert_promised(answer, "/api/echo", probe=False)


def test_the_header_and_the_log_line_agree_on_the_duration(app: Harness) -> None:
    """X-Response-Time is the duration_ms that the request's log line says."""
    answers = [
        app.authed(body=b"{}").response,
        app.request("GET", "/api/nope", headers={"authorization": ALICE}).response,
        app.request("POST", "/api/echo", b"{}").response,
    ]
    lines = app.log_lines()
    assert [line["status"] for line in lines] == [200, 404, 401]
    for answer, line in zip(answers, lines, strict=True):
        assert answer.header("x-response-time") == f"{line['duration_ms']:.3f}ms"
        assert answer.header("x-request-id") == line["requestId"]


def test_a_stream_carries_them_on_its_head(app: Harness) -> None:
    """The answer of /api/stream is stamped when its head is sent, before any event."""
    proto = FakeProto()
    app.request(
        "GET", "/api/stream?count=2&interval_ms=0", headers={"authorization": ALICE}, proto=proto
    )
    answer = proto.response
    assert answer.body.count(b"id: ") == 2
    assert_promised(answer, "/api/stream", probe=False)
