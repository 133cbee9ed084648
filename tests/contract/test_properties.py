"""Properties of the echo, of any body and of any header value, in process and against echod.

Each property runs through the app in this process with many examples (a fake protocol,
and the real access log writing into a pipe), and against a live echod with fewer.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from echod.routes import ROUTES
from echod.telemetry.line_writer import FLUSH_DELAY
from tests.contract.strategies import (
    exact,
    header_bytes,
    header_texts,
    objects,
    to_json,
)
from tests.contract.support import IN_PROCESS_EXAMPLES, LIVE_EXAMPLES, PUBLIC_PATHS
from tests.support.patterns import SAFE_REQUEST_ID, UUID4
from tests.support.users import ALICE, AUTH, AUTH_HEADER

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.harness import Harness
    from tests.support.processes import Echod

# Timing on a shared machine is noise: these properties are about answers, not speed.
IN_PROCESS = settings(
    max_examples=IN_PROCESS_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LIVE = settings(
    max_examples=LIVE_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ECHOED = ("echoed", ("literal", True))
# A response header line as RFC 9110 allows it, with nothing but visible ASCII and spaces.
HEADER_VALUE = re.compile(r"[\x20-\x7e]*")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")


@pytest.fixture(scope="module")
def live_client(live_echod: Echod) -> Iterator[httpx.Client]:
    """An HTTP client for the live echod, authenticated as the demo user."""
    with httpx.Client(base_url=live_echod.url, auth=AUTH, timeout=10) as made:
        yield made


def logged(app: Harness) -> list[bytes]:
    """The log lines the app wrote since the last call, split on newlines only."""
    app.app._log.flush()  # its writing thread has written them
    os.set_blocking(app._read, False)
    data = b""
    try:
        while chunk := os.read(app._read, 1 << 16):
            data += chunk
    except BlockingIOError:
        pass
    assert data.endswith(b"\n") or not data, data
    return data.split(b"\n")[:-1]


def safe_headers(headers: dict[str, str]) -> None:
    """Every response header is a token name and a value of visible ASCII."""
    for name, value in headers.items():
        assert HEADER_NAME.fullmatch(name), name
        assert HEADER_VALUE.fullmatch(value), (name, value)


class TestEchoIsExact:
    @IN_PROCESS
    @given(value=objects, ascii_only=st.booleans(), method=st.sampled_from(["POST", "PUT"]))
    def test_in_process(
        self, app: Harness, value: dict[str, Any], ascii_only: bool, method: str
    ) -> None:
        """Any object comes back as it was, in order, numbers digit for digit, echoed last."""
        body = to_json(value, ascii_only=ascii_only).encode()
        response = app.authed(method, body=body).response
        logged(app)
        assert response.status == 200, response.body
        assert response.header("content-type") == "application/json"
        assert exact(response.body) == [*exact(body), ECHOED]

    @LIVE
    @given(value=objects)
    def test_live(self, live_client: httpx.Client, value: dict[str, Any]) -> None:
        """The same over HTTP: the answer is the object plus "echoed": true, exactly."""
        body = to_json(value).encode()
        response = live_client.post("/api/echo", content=body)
        assert response.status_code == 200, response.text
        assert exact(response.content) == [*exact(body), ECHOED]


def splice(text: bytes, at: int, noise: bytes) -> bytes:
    """``text`` with ``noise`` put in at a position, so that bodies are nearly JSON."""
    at %= len(text) + 1
    return text[:at] + noise + text[at:]


bodies = st.one_of(
    st.binary(max_size=256),
    st.builds(
        splice,
        objects.map(lambda value: to_json(value).encode()),
        st.integers(min_value=0),
        st.binary(max_size=4),
    ),
)


def check_body_answer(status: int, content_type: str | None, body: bytes, rid: str) -> None:
    """A body is echoed (200) or refused as bad (400), with a well-formed answer."""
    assert status in {200, 400}, (status, body)
    event(f"status {status}")
    answer = json.loads(body)
    if status == 200:
        assert content_type == "application/json"
        assert list(answer)[-1] == "echoed"
        assert answer["echoed"] is True
    else:
        assert content_type == "application/problem+json"
        assert answer["status"] == 400
        assert answer["requestId"] == rid


class TestAnyBodyIsAnsweredOrRefused:
    @IN_PROCESS
    @given(body=bodies)
    def test_in_process(self, app: Harness, body: bytes) -> None:
        """Any bytes as a body: 200 or 400, never a 5xx, and one log line with that status."""
        response = app.authed(body=body).response
        [line] = logged(app)
        rid = response.header("x-request-id") or ""
        check_body_answer(response.status, response.header("content-type"), response.body, rid)
        assert json.loads(line)["status"] == response.status

    @LIVE
    @given(body=bodies)
    def test_live(self, live_client: httpx.Client, body: bytes) -> None:
        """The same over HTTP."""
        response = live_client.post("/api/echo", content=body)
        check_body_answer(
            response.status_code,
            response.headers.get("content-type"),
            response.content,
            response.headers["x-request-id"],
        )


HEADER_NAMES = [
    "x-request-id",
    "authorization",
    "content-encoding",
    "content-length",
    "accept",
    "user-agent",
]
methods = st.one_of(st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE"]), st.text(max_size=8))
# /api/stream and /api/drip are left to their live tests: a stream lasts 9 s and a drip
# 2 s unless asked otherwise.
SLOW = frozenset({"/api/stream", "/api/drip"})
paths = st.one_of(
    st.sampled_from(
        [*(route.path for route in ROUTES if route.path not in SLOW), "/", "/api/echo/"]
    ),
    # A path as the server hands it on: its query, after "?", comes apart.
    st.text(st.characters(codec="utf-8", exclude_characters="?"), max_size=16).map("/{}".format),
)


def check_request_id(given: str | None, rid: str) -> None:
    """A safe id comes back as it was; anything else is replaced by a UUID4."""
    if given is not None and SAFE_REQUEST_ID.fullmatch(given):
        assert rid == given
    else:
        assert UUID4.fullmatch(rid), rid


class TestHeaderValuesCannotCorrupt:
    @IN_PROCESS
    @given(
        method=methods,
        path=paths,
        headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_texts, max_size=4),
        signed_in=st.booleans(),
    )
    def test_in_process(
        self, app: Harness, method: str, path: str, headers: dict[str, str], signed_in: bool
    ) -> None:
        """Any method, path and header text: clean headers, and exactly one parseable log line."""
        if signed_in:
            headers.setdefault("authorization", ALICE)
        response = app.request(method, path, b"{}", dict(headers)).response
        lines = logged(app)
        rid = response.header("x-request-id") or ""
        event(f"status {response.status}")
        safe_headers(response.headers)
        check_request_id(headers.get("x-request-id"), rid)
        if path in PUBLIC_PATHS and method in {"GET", "HEAD"}:
            assert response.status == 200
            assert lines == []
            return
        assert response.status < 500, response.body
        if response.status == 200 and path == "/api/raw":  # the body's own type: none here
            assert response.header("content-type") == "application/octet-stream"
        elif response.status == 200 and path == "/auth/verify":  # an empty yes to a proxy
            assert (response.header("content-type"), response.body) == (None, b"")
        else:
            assert response.header("content-type") in {
                "application/json",
                "application/problem+json",
            }
        [line] = lines
        record = json.loads(line)
        assert (record["method"], record["path"], record["status"]) == (
            method,
            path,
            response.status,
        )
        assert record["message"] == f"{method} {path} HTTP/1.1"
        assert record["requestId"] == rid
        if method == "HEAD":
            assert response.body == b""
        elif response.status != 200:
            problem = json.loads(response.body)
            assert (problem["instance"], problem["requestId"]) == (path, rid)

    @LIVE
    @given(
        request_id=header_bytes,
        name=st.sampled_from(HEADER_NAMES[1:]),
        value=header_bytes,
        probe=st.booleans(),
    )
    def test_live(
        self, live_echod: Echod, request_id: bytes, name: str, value: bytes, probe: bool
    ) -> None:
        """Raw header bytes, CR and LF included: whole answers, one JSON log line per request."""
        before = len(live_echod.request_lines(settle=0))
        head = b"GET /health" if probe else b"POST /api/echo"
        auth = b"" if name == "authorization" else f"authorization: {AUTH_HEADER}\r\n".encode()
        raw = (
            head + b" HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-length: 2\r\n"
            + auth
            + b"x-request-id: " + request_id + b"\r\n"
            + name.encode() + b": " + value + b"\r\n\r\n{}"
        )  # fmt: skip
        status, headers = parse_response(exchange(live_echod.port, raw))
        safe_headers(headers)
        event(f"status {status}" + (" from echod" if "x-request-id" in headers else ""))
        if "x-request-id" not in headers:  # refused by the HTTP server: never reached echod
            assert status in {400, 431}
            assert wait_for_lines(live_echod, before) == []
            return
        rid = headers["x-request-id"]
        assert SAFE_REQUEST_ID.fullmatch(rid)
        if SAFE_REQUEST_ID.fullmatch(request_id.decode("latin-1")):
            assert rid == request_id.decode()
        assert status < 500
        new = wait_for_lines(live_echod, before, 0 if probe else 1)
        assert [line["requestId"] for line in new] == ([] if probe else [rid])


def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` on a new connection and return everything until echod closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(raw)
        received = b""
        while chunk := conn.recv(1 << 16):
            received += chunk
    return received


STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) [\x20-\x7e]*")


def parse_response(data: bytes) -> tuple[int, dict[str, str]]:
    """Parse one HTTP/1.1 response strictly: a status line, header lines, the declared body."""
    head, separator, body = data.partition(b"\r\n\r\n")
    assert separator, data
    status_line, *lines = head.split(b"\r\n")
    matched = STATUS_LINE.fullmatch(status_line)
    assert matched, status_line
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.decode("latin-1").partition(": ")
        assert colon, line
        assert name not in headers, (name, data)
        headers[name] = value
    assert len(body) == int(headers["content-length"]), data
    return int(matched[1]), headers


def wait_for_lines(echod: Echod, before: int, expected: int = 0) -> list[dict[str, Any]]:
    """The request lines logged after the first ``before``, once ``expected`` are there.

    Lines are buffered for at most ``FLUSH_DELAY``; waiting a little longer shows any extra.
    """
    deadline = time.monotonic() + 5
    lines = echod.request_lines(settle=0)
    while len(lines) < before + expected and time.monotonic() < deadline:
        lines = echod.request_lines(settle=0.01)
    time.sleep(2 * FLUSH_DELAY)
    return echod.request_lines(settle=0)[before:]
