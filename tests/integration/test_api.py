"""The HTTP contract, end to end: a real echod, a real client."""

from __future__ import annotations

import json
import re
import subprocess
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.patterns import UUID4
from tests.support.processes import Echod, raw_exchange
from tests.support.tools import require_tool
from tests.support.users import AUTH_HEADER

if TYPE_CHECKING:
    from collections.abc import Iterator


class TestEcho:
    @pytest.mark.parametrize("method", ["POST", "PUT"])
    def test_object_is_echoed_with_echoed_true(self, client: httpx.Client, method: str) -> None:
        """The seed's contract, both methods."""
        response = client.request(method, "/api/echo", content=b'{"foo": "bar"}')
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.content == b'{"foo":"bar","echoed":true}\n'

    def test_order_numbers_and_unicode_come_back_exactly(self, client: httpx.Client) -> None:
        """Keys keep their order; big integers, decimals and unicode are exact."""
        body = '{"z": 123456789012345678901234567890, "a": 1.10, "u": "日本 😀", "e": 1e400}'
        response = client.post("/api/echo", content=body.encode())
        expected = '{"z":123456789012345678901234567890,"a":1.10,"u":"日本 😀","e":1E+400,'
        assert response.content == (expected + '"echoed":true}\n').encode()

    @pytest.mark.parametrize(
        ("body", "detail"),
        [
            (b"", "empty"),
            (b"{", "not valid JSON"),
            (b'{"a": "\xff"}', "Invalid UTF-8"),
            (b"[1]", "not an array"),
            (b"null", "not null"),
            (b'{"echoed": true}', "already echoed"),
            (b'{"echoed": "true"}', "already echoed"),
            (b'{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}", "deeper than 128"),
        ],
        ids=["empty", "invalid", "utf8", "array", "null", "echoed", "echoed-string", "deep"],
    )
    def test_bad_bodies_are_400_problems(
        self, client: httpx.Client, body: bytes, detail: str
    ) -> None:
        """Every refusal is problem+json with a reason and the request id."""
        response = client.post("/api/echo", content=body)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert detail in problem["detail"]
        assert problem["requestId"] == response.headers["x-request-id"]

    def test_body_over_the_limit_is_413_with_content_length(self, client: httpx.Client) -> None:
        """A declared body over 1 MiB is refused."""
        response = client.post("/api/echo", content=b" " * (1024 * 1024 + 1))
        assert response.status_code == 413
        assert "1048576 bytes" in response.json()["detail"]

    def test_body_over_the_limit_is_413_when_chunked(self, client: httpx.Client) -> None:
        """A chunked body is counted as it arrives."""

        def chunks() -> Iterator[bytes]:
            for _ in range(200):
                yield b" " * 8192

        response = client.post("/api/echo", content=chunks())
        assert response.status_code == 413

    def test_chunked_body_within_the_limit_is_echoed(self, client: httpx.Client) -> None:
        """Transfer-Encoding: chunked works like a declared length."""
        response = client.post("/api/echo", content=iter([b'{"a":', b" 1}"]))
        assert response.content == b'{"a":1,"echoed":true}\n'


class TestHeaders:
    def test_request_id_is_kept_when_safe(self, client: httpx.Client) -> None:
        """A valid X-Request-ID comes back as sent."""
        response = client.post("/api/echo", content=b"{}", headers={"x-request-id": "abc.1:2-3_4"})
        assert response.headers["x-request-id"] == "abc.1:2-3_4"

    def test_unsafe_request_id_is_replaced(self, client: httpx.Client) -> None:
        """An id that is too long or has other characters gets a fresh UUID4."""
        response = client.post("/api/echo", content=b"{}", headers={"x-request-id": "x" * 200})
        assert UUID4.fullmatch(response.headers["x-request-id"])

    def test_response_time_is_in_milliseconds(self, client: httpx.Client) -> None:
        """X-Response-Time: <ms>ms."""
        response = client.post("/api/echo", content=b"{}")
        assert re.fullmatch(r"\d+\.\d{3}ms", response.headers["x-response-time"])

    def test_every_response_has_a_request_id(self, client: httpx.Client) -> None:
        """Probes, errors and echoes alike."""
        for response in (
            client.get("/health"),
            client.get("/metrics"),
            client.get("/ready"),
            client.get("/nope"),
            client.post("/api/echo", content=b"{}"),
        ):
            assert response.headers["x-request-id"]


class TestRoutes:
    def test_unknown_path_needs_auth_then_is_404(self, echod: Echod) -> None:
        """404 only for authenticated clients; others get 401."""
        assert httpx.get(echod.url + "/nope").status_code == 401
        response = httpx.get(echod.url + "/nope", headers={"authorization": AUTH_HEADER})
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    def test_wrong_method_is_405_with_allow(self, client: httpx.Client) -> None:
        """GET /api/echo names POST and PUT."""
        response = client.get("/api/echo")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST, PUT"
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
    def test_probes_need_no_auth(self, echod: Echod, path: str) -> None:
        """Liveness, readiness and metrics are open."""
        assert httpx.get(echod.url + path).status_code == 200
        assert httpx.head(echod.url + path).status_code == 200

    def test_head_has_no_body(self, echod: Echod) -> None:
        """HEAD /health answers the headers of GET without the body."""
        raw = raw_exchange(echod, b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"\r\ncontent-length: 16\r\n" in head
        assert body == b""

    def test_unknown_method_is_405(self, echod: Echod) -> None:
        """A method echod does not know is refused, not crashed on."""
        response = httpx.request(
            "BREW", echod.url + "/api/echo", headers={"authorization": AUTH_HEADER}
        )
        assert response.status_code == 405


class TestMetrics:
    def test_requests_are_counted_with_route_labels(
        self, echod: Echod, client: httpx.Client
    ) -> None:
        """http_requests_total{status,method,path} counts echoes; probes are not counted."""
        before = echod.metric('http_requests_total{method="PUT",path="/api/echo",status="200"}')
        client.put("/api/echo", content=b"{}")
        client.get("/health")
        after = echod.metric('http_requests_total{method="PUT",path="/api/echo",status="200"}')
        assert after == before + 1
        text = httpx.get(echod.url + "/metrics").text
        assert 'path="/health"' not in text
        assert 'path="/metrics"' not in text

    def test_random_paths_create_no_new_series(self, echod: Echod, client: httpx.Client) -> None:
        """A scan of random URLs is counted under path="unmatched"."""
        client.get("/first-miss")
        before = series(echod)
        for n in range(50):
            client.get(f"/scan/{n}/x")
            client.request("PROPFIND", f"/scan/{n}")
        assert series(echod) == before | {
            'http_requests_total{method="other",path="unmatched",status="404"}'
        }

    def test_histogram_is_in_milliseconds(self, echod: Echod) -> None:
        """Buckets run from 0.1 to 10000."""
        text = httpx.get(echod.url + "/metrics").text
        assert 'http_request_duration_milliseconds_bucket{le="0.1"}' in text
        assert 'http_request_duration_milliseconds_bucket{le="10000.0"}' in text
        assert "echod_build_info{version=" in text
        assert "process_resident_memory_bytes " in text


def series(echod: Echod) -> set[str]:
    """The http_requests_total series /metrics shows now."""
    text = httpx.get(echod.url + "/metrics").text
    return {
        line.rsplit(" ", 1)[0]
        for line in text.splitlines()
        if line.startswith("http_requests_total{")
    }


def test_form_encoded_curl_style_body_is_echoed(client: httpx.Client) -> None:
    """The README's curl sends application/x-www-form-urlencoded; it is echoed anyway."""
    response = client.post(
        "/api/echo",
        content=b'{"foo": "bar"}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert json.loads(response.content) == {"foo": "bar", "echoed": True}


# Each protocol echod speaks: HTTP/1.1, h2c with prior knowledge on the plain port, and
# h2 over TLS (ALPN).
PROTOCOLS = {
    "http-1.1": {"http1": True, "http2": False, "tls": False},
    "h2c": {"http1": False, "http2": True, "tls": False},
    "h2": {"http1": False, "http2": True, "tls": True},
}


@pytest.fixture(scope="module")
def h2c_echod() -> Iterator[Echod]:
    """An echod whose plain port also speaks h2c (--h2c), with HTTPS."""
    server = Echod("--h2c", tls=True)
    try:
        yield server.start()
    finally:
        server.close()


class TestHeadOverEveryProtocol:
    @pytest.mark.parametrize("protocol", PROTOCOLS, ids=str)
    @pytest.mark.parametrize(
        ("path", "status"),
        [("/health", 200), ("/ready", 200), ("/openapi.json", 200), ("/nope", 401)],
        ids=["health", "ready", "openapi", "401"],
    )
    def test_head_carries_get_s_length_and_no_body(
        self, echod: Echod, h2c_echod: Echod, protocol: str, path: str, status: int
    ) -> None:
        """RFC 9110 9.3.2 over HTTP/1.1, h2c and h2: clients that check the length succeed."""
        options = PROTOCOLS[protocol]
        echod = h2c_echod if protocol == "h2c" else echod
        base = echod.tls_url if options["tls"] else echod.url
        with httpx.Client(
            http1=options["http1"],
            http2=options["http2"],
            verify=False,  # noqa: S501 - the development certificate
        ) as client:
            get = client.get(base + path)
            head = client.head(base + path)
        assert head.http_version == ("HTTP/1.1" if options["http1"] else "HTTP/2")
        assert get.status_code == head.status_code == status
        assert head.content == b""
        assert head.headers["content-length"] == str(len(get.content))

    @pytest.mark.parametrize("flag", ["--http2-prior-knowledge", "--http2"], ids=["h2c", "h2"])
    def test_curl_head_over_http2(self, echod: Echod, h2c_echod: Echod, flag: str) -> None:
        """curl -I over HTTP/2 used to fail with PROTOCOL_ERROR when a body followed."""
        curl = require_tool("curl", "Debian package curl")
        echod = h2c_echod if flag == "--http2-prior-knowledge" else echod
        url = (echod.tls_url if flag == "--http2" else echod.url) + "/health"
        done = subprocess.run(
            [curl, "-skI", flag, "-w", "%{http_version}", url],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("HTTP/2 200")
        assert "content-length: 16" in done.stdout


class TestCaching:
    @pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/api/echo", "/api/nope"])
    def test_probes_metrics_and_api_answers_say_no_store(
        self, client: httpx.Client, path: str
    ) -> None:
        """A cache in front must not keep /ready at 200 through a drain, nor keep an echo."""
        response = client.post(path, content=b"{}") if path == "/api/echo" else client.get(path)
        assert response.headers["cache-control"] == "no-store"

    def test_metrics_vary_on_accept_and_honour_q_values(self, client: httpx.Client) -> None:
        """q=0 refuses OpenMetrics; the answer names Accept as what it varies on."""
        refused = client.get(
            "/metrics", headers={"accept": "application/openmetrics-text;q=0, text/plain;q=1"}
        )
        assert refused.headers["content-type"].startswith("text/plain")
        assert refused.headers["vary"] == "accept"
        wanted = client.get("/metrics", headers={"accept": "application/openmetrics-text"})
        assert wanted.headers["content-type"].startswith("application/openmetrics-text")
