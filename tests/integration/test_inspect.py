"""/api/inspect against a live echod: the report, over HTTP/1.1 and HTTP/2, and its controls."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.patterns import UUID4
from tests.support.processes import raw_exchange
from tests.support.users import AUTH, AUTH_HEADER, PASSWORD, USER

if TYPE_CHECKING:
    from tests.support.processes import Echod

CRLF = b"\r\n"


def report(response: httpx.Response) -> dict[str, Any]:
    """The report of a 200 answer."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    parsed: dict[str, Any] = response.json()
    return parsed


class TestReport:
    def test_every_field_over_http_1_1(self, client: httpx.Client, echod: Echod) -> None:
        """Method, raw query, args, version, scheme, peer, listener, body and ids."""
        body = "héllo wörld".encode()
        response = client.patch(
            "/api/inspect?b=two+words&a=1&a=2&flag&pct=%2F%26",
            content=body,
            headers={"X-Request-ID": "inspect-1"},
        )
        got = report(response)
        assert got["method"] == "PATCH"
        assert got["path"] == "/api/inspect"
        assert got["query"] == "b=two+words&a=1&a=2&flag&pct=%2F%26"
        assert got["args"] == {"b": ["two words"], "a": ["1", "2"], "flag": [""], "pct": ["/&"]}
        assert got["httpVersion"] == "1.1"
        assert got["scheme"] == "http"
        host, _, port = got["client"].rpartition(":")
        assert host == "127.0.0.1"
        assert port.isdigit()
        assert got["server"] == f"127.0.0.1:{echod.port}"
        sha256 = hashlib.sha256(body).hexdigest()
        assert got["body"] == {
            "bytes": len(body),
            "sha256": sha256,
            "text": "héllo wörld",
            "received": {"contentEncoding": [], "bytes": len(body), "sha256": sha256},
        }
        assert got["requestId"] == "inspect-1" == response.headers["x-request-id"]
        assert UUID4.fullmatch(got["instance"]["id"])
        assert set(got["instance"]) == {"id"}, "the hostname is shown only when asked for"

    def test_every_method_is_answered(self, client: httpx.Client) -> None:
        """GET, HEAD, POST, PUT, PATCH and DELETE; HEAD without a body but its length."""
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            assert report(client.request(method, "/api/inspect"))["method"] == method
        head = client.head("/api/inspect")
        assert head.status_code == 200
        assert head.content == b""
        assert int(head.headers["content-length"]) > 100

    def test_no_query_is_an_empty_string(self, client: httpx.Client) -> None:
        """Without a query string, query is "" and args is {}."""
        got = report(client.get("/api/inspect"))
        assert (got["query"], got["args"]) == ("", {})

    def test_http_2_and_https(self, echod: Echod) -> None:
        """Over HTTPS with h2, the report says so."""
        with httpx.Client(http2=True, verify=False, auth=AUTH) as h2:  # noqa: S501 - self-signed
            response = h2.post(echod.tls_url + "/api/inspect", content=b"{}")
        assert response.http_version == "HTTP/2"
        got = report(response)
        assert (got["httpVersion"], got["scheme"]) == ("2", "https")
        assert got["server"] == f"127.0.0.1:{echod.tls_port}"

    def test_http_1_0(self, echod: Echod) -> None:
        """An HTTP/1.0 request is reported as 1.0."""
        raw = raw_exchange(
            echod,
            CRLF.join([b"GET /api/inspect HTTP/1.0", b"Authorization: " + AUTH_HEADER.encode()])
            + CRLF * 2,
            answers=None,
        )
        head, _, content = raw.partition(CRLF * 2)
        assert head.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200"))
        assert json.loads(content)["httpVersion"] == "1.0"

    def test_repeated_headers_keep_their_order(self, echod: Echod) -> None:
        """Values of one name stay in arrival order, grouped under its first appearance."""
        raw = raw_exchange(
            echod,
            CRLF.join(
                [
                    b"GET /api/inspect HTTP/1.1",
                    b"Host: echod",
                    b"Connection: close",
                    b"X-Dup: one",
                    b"Authorization: " + AUTH_HEADER.encode(),
                    b"X-Dup: two",
                    b"X-Other: x",
                    b"x-dup: three",
                ]
            )
            + CRLF * 2,
            answers=None,
        )
        headers = json.loads(raw.partition(CRLF * 2)[2])["headers"]
        assert [value for name, value in headers if name == "x-dup"] == ["one", "two", "three"]
        names = [name for name, _ in headers]
        assert names.index("x-dup") < names.index("authorization") < names.index("x-other")

    def test_forwarded_claims_are_reported_as_sent(self, client: httpx.Client) -> None:
        """Each source on its own, in order: a forged Forwarded hides no X-Forwarded-For."""
        got = report(
            client.get(
                "/api/inspect",
                headers=[
                    ("Forwarded", 'for=192.0.2.60;proto=https, for="[2001:db8:cafe::17]:4711"'),
                    ("Forwarded", "for=unknown;host=echo.example, for=_hidden"),
                    ("X-Forwarded-For", "198.51.100.1"),
                    ("X-Forwarded-Proto", "http"),
                    ("X-Real-IP", "203.0.113.9"),
                ],
            )
        )
        assert got["forwarded"] == {
            "forwarded": [
                {"for": "192.0.2.60", "proto": "https"},
                {"for": "[2001:db8:cafe::17]:4711"},
                {"for": "unknown", "host": "echo.example"},
                {"for": "_hidden"},
            ],
            "xForwardedFor": ["198.51.100.1"],
            "xForwardedProto": ["http"],
            "xForwardedHost": [],
            "xForwardedPort": [],
            "xRealIp": ["203.0.113.9"],
        }

    def test_x_forwarded_headers_without_forwarded(self, client: httpx.Client) -> None:
        """X-Forwarded-For lists the addresses in order; proto and host list theirs."""
        got = report(
            client.get(
                "/api/inspect",
                headers=[
                    ("X-Forwarded-For", "203.0.113.7, 10.0.0.1:8080"),
                    ("X-Forwarded-For", "[::1]"),
                    ("X-Forwarded-Proto", "https"),
                    ("X-Forwarded-Host", "api.example"),
                ],
            )
        )
        assert got["forwarded"] == {
            "forwarded": [],
            "xForwardedFor": ["203.0.113.7", "10.0.0.1:8080", "[::1]"],
            "xForwardedProto": ["https"],
            "xForwardedHost": ["api.example"],
            "xForwardedPort": [],
            "xRealIp": [],
        }

    def test_a_body_that_is_not_text(self, client: httpx.Client) -> None:
        """Bytes that are not UTF-8, or over 64 KiB, have a size and hash but no text."""
        for body in (b"\xff\xfe\x00", b"a" * (64 * 1024 + 1)):
            got = report(client.post("/api/inspect", content=body))["body"]
            sha256 = hashlib.sha256(body).hexdigest()
            assert got == {
                "bytes": len(body),
                "sha256": sha256,
                "text": None,
                "received": {"contentEncoding": [], "bytes": len(body), "sha256": sha256},
            }
        assert report(client.post("/api/inspect", content=b"a" * 65536))["body"]["text"]

    def test_the_echos_body_limits_apply(self, client: httpx.Client, echod: Echod) -> None:
        """413 over the body limit, before the body is read, and 415 for an unknown coding."""
        head = CRLF.join(
            [
                b"PUT /api/inspect HTTP/1.1",
                b"Host: echod",
                b"Authorization: " + AUTH_HEADER.encode(),
                b"Content-Length: 1048577",
            ]
        )
        with socket.create_connection(("127.0.0.1", echod.port), timeout=5) as conn:
            conn.sendall(head + CRLF * 2)
            assert conn.recv(4096).startswith(b"HTTP/1.1 413")
        encoded = client.post("/api/inspect", content=b"x", headers={"Content-Encoding": "lzw"})
        assert encoded.status_code == 415
        assert encoded.headers["content-type"] == "application/problem+json"
        assert encoded.headers["accept-encoding"] == "gzip, deflate, br, zstd"

    def test_needs_credentials_and_an_exact_path(self, echod: Echod) -> None:
        """401 without credentials; sub-paths are 404."""
        assert httpx.get(echod.url + "/api/inspect").status_code == 401
        assert httpx.get(echod.url + "/api/inspect/x", auth=AUTH).status_code == 404
        assert httpx.request("OPTIONS", echod.url + "/api/inspect", auth=AUTH).status_code == 405


class TestSecrets:
    def test_the_password_never_appears_and_the_user_does(self, client: httpx.Client) -> None:
        """Authorization keeps its user only; the password is nowhere in the answer."""
        response = client.get(
            "/api/inspect",
            headers={"Proxy-Authorization": "Bearer sekrit-token", "Cookie": "session=sekrit"},
        )
        headers = dict(report(response)["headers"])
        assert headers["authorization"] == f"Basic {USER}:<redacted>"
        assert headers["proxy-authorization"] == "Bearer <redacted>"
        assert headers["cookie"] == "<redacted>"
        assert PASSWORD not in response.text
        assert "sekrit" not in response.text

    def test_nor_in_the_log(self, client: httpx.Client, echod: Echod) -> None:
        """The log line names the user, and no secret."""
        client.get("/api/inspect", headers={"X-Request-ID": "secret-check"})
        [line] = [line for line in echod.request_lines() if line["requestId"] == "secret-check"]
        assert line["userId"] == USER
        assert PASSWORD not in echod.stdout()


class TestInstance:
    def test_one_id_across_listeners_and_workers(self, make_echod: Any) -> None:
        """Every worker, on both listeners, reports the same id; a restart draws a new one."""
        echod = make_echod("--workers", "2", tls=True)
        ids = set()
        for _ in range(20):  # a new connection each time, to reach both workers
            ids.add(report(httpx.get(echod.url + "/api/inspect", auth=AUTH))["instance"]["id"])
            tls = httpx.get(echod.tls_url + "/api/inspect", auth=AUTH, verify=False)  # noqa: S501
            ids.add(report(tls)["instance"]["id"])
        assert len(ids) == 1
        assert len(echod.workers()) == 2  # each serves both listeners
        echod.close()
        again = make_echod()
        other = report(httpx.get(again.url + "/api/inspect", auth=AUTH))["instance"]["id"]
        assert other not in ids

    def test_the_hostname_only_when_asked_for(self, make_echod: Any) -> None:
        """--expose-hostname adds the machine's hostname; so does ECHOD_EXPOSE_HOSTNAME=1."""
        for echod in (
            make_echod("--expose-hostname"),
            make_echod(env={"ECHOD_EXPOSE_HOSTNAME": "1"}),
        ):
            got = report(httpx.get(echod.url + "/api/inspect", auth=AUTH))["instance"]
            assert got["hostname"] == socket.gethostname()


class TestStatus:
    @pytest.mark.parametrize("status", [200, 201, 400, 418, 422, 500, 599])
    def test_the_status_asked_for_with_the_report(self, client: httpx.Client, status: int) -> None:
        """The same report comes back under the status asked for."""
        response = client.get(f"/api/inspect?status={status}")
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        assert response.json()["args"] == {"status": [str(status)]}

    def test_a_redirection_points_where_location_says(self, client: httpx.Client) -> None:
        """A 3xx other than 304 carries location=, and is a 400 without it."""
        response = client.get("/api/inspect?status=302&location=/api/inspect%3Fmoved")
        assert response.status_code == 302
        assert response.headers["location"] == "/api/inspect?moved"
        assert client.get("/api/inspect?status=302").status_code == 400

    @pytest.mark.parametrize("status", [204, 304])
    def test_no_body_for_204_and_304(self, client: httpx.Client, status: int) -> None:
        """204 and 304 have no body."""
        response = client.get("/api/inspect", headers={"X-Echod-Status": str(status)})
        assert response.status_code == status
        assert response.content == b""

    def test_a_forced_status_gets_the_header_it_needs(self, client: httpx.Client) -> None:
        """A forced 401 has its challenge, a 405 Allow, a 503 Retry-After."""
        unauthorized = client.get("/api/inspect?status=401")
        assert unauthorized.status_code == 401
        assert unauthorized.headers["www-authenticate"] == 'Basic realm="echod"'
        not_allowed = client.get("/api/inspect?status=405")
        assert not_allowed.headers["allow"] == "GET, HEAD, POST, PUT, PATCH, DELETE"
        unavailable = client.get("/api/inspect?status=503&retry_after=7")
        assert unavailable.status_code == 503
        assert unavailable.headers["retry-after"] == "7"

    def test_the_query_wins_even_when_bad(self, client: httpx.Client) -> None:
        """A good header does not save a bad query parameter; a good query wins outright."""
        bad = client.get("/api/inspect?status=abc", headers={"X-Echod-Status": "201"})
        assert bad.status_code == 400
        assert "status" in bad.json()["detail"]
        good = client.get("/api/inspect?status=202", headers={"X-Echod-Status": "abc"})
        assert good.status_code == 202

    @pytest.mark.parametrize(
        "query",
        ["status=199", "status=600", "status=-200", "status=+200", "status=200.0", "status=2e2",
         "status=%20200", "status=", "status=0x1F4", "status=200&status=200",
         "status=99999999999999999999"],
    )  # fmt: skip
    def test_anything_else_is_a_400_that_names_it(self, client: httpx.Client, query: str) -> None:
        """Only plain digits within 200-599, given once."""
        response = client.get(f"/api/inspect?{query}")
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert "status" in response.json()["detail"]

    def test_counted_under_its_code_or_other(self, make_echod: Any) -> None:
        """A registered status is its own label; an unregistered one is other."""
        echod = make_echod()
        for status in (418, 599, 599):
            httpx.get(f"{echod.url}/api/inspect?status={status}", auth=AUTH)
        metrics = httpx.get(echod.url + "/metrics").text
        assert 'http_requests_total{method="GET",path="/api/inspect",status="418"} 1.0' in metrics
        assert 'http_requests_total{method="GET",path="/api/inspect",status="other"} 2.0' in metrics
        assert 'status="599"' not in metrics


class TestDelay:
    def test_the_answer_waits_and_the_log_counts_it(self, make_echod: Any) -> None:
        """The log's duration_ms includes the delay."""
        echod = make_echod()
        response = httpx.get(
            echod.url + "/api/inspect?delay_ms=300", auth=AUTH, headers={"X-Request-ID": "slow"}
        )
        assert response.status_code == 200
        [line] = [line for line in echod.request_lines() if line["requestId"] == "slow"]
        assert line["duration_ms"] >= 300

    def test_counted_but_not_timed(self, make_echod: Any) -> None:
        """A delayed answer is in http_requests_total, not in the latency histogram."""
        echod = make_echod()
        for _ in range(3):
            httpx.get(echod.url + "/api/inspect?delay_ms=50", auth=AUTH)
        httpx.post(echod.url + "/api/echo", content=b"{}", auth=AUTH)
        metrics = httpx.get(echod.url + "/metrics").text
        assert 'http_requests_total{method="GET",path="/api/inspect",status="200"} 3.0' in metrics
        assert "http_request_duration_milliseconds_count 1.0" in metrics

    def test_delays_run_concurrently_on_one_worker(self, make_echod: Any) -> None:
        """40 concurrent 800 ms delays on one worker finish well within 3 s (32 s in a row)."""
        echod = make_echod("--workers", "1")

        async def all_of_them() -> list[int]:
            limits = httpx.Limits(max_connections=40)
            async with httpx.AsyncClient(auth=AUTH, limits=limits, timeout=10) as client:
                answers = await asyncio.gather(
                    *(client.get(echod.url + "/api/inspect?delay_ms=800") for _ in range(40))
                )
            return [answer.status_code for answer in answers]

        started = time.monotonic()
        statuses = asyncio.run(all_of_them())
        elapsed = time.monotonic() - started
        assert statuses == [200] * 40
        assert elapsed < 3, f"40 delays of 800 ms took {elapsed:.1f} s"

    @pytest.mark.parametrize(
        "query",
        ["delay_ms=-1", "delay_ms=1.5", "delay_ms=1e3", "delay_ms=10001", "delay_ms=%205",
         "delay_ms=99999999999999999999", "delay_ms=1&delay_ms=1"],
    )  # fmt: skip
    def test_out_of_bounds_is_a_400(self, client: httpx.Client, query: str) -> None:
        """From 0 to --max-delay x 1000 only, in plain digits, once."""
        response = client.get(f"/api/inspect?{query}")
        assert response.status_code == 400
        assert "delay_ms" in response.json()["detail"]

    def test_max_delay_sets_the_bound(self, make_echod: Any) -> None:
        """With --max-delay 0.5, 500 ms is the longest delay; the header obeys it too."""
        echod = make_echod("--max-delay", "0.5")
        ok = httpx.get(echod.url + "/api/inspect?delay_ms=500", auth=AUTH)
        assert ok.status_code == 200
        over = httpx.get(echod.url + "/api/inspect", auth=AUTH, headers={"X-Echod-Delay-Ms": "501"})
        assert over.status_code == 400
        assert "x-echod-delay-ms" in over.json()["detail"].lower()

    def test_shutdown_answers_waiting_delays_at_once(self, make_echod: Any) -> None:
        """On SIGTERM a 10 s delay is answered at once, and echod exits 0 in time."""
        echod = make_echod("--shutdown-timeout", "5")
        answers: list[httpx.Response] = []
        waiting = threading.Thread(
            target=lambda: answers.append(
                httpx.get(echod.url + "/api/inspect?delay_ms=10000", auth=AUTH, timeout=20)
            )
        )
        waiting.start()
        time.sleep(0.5)  # the request is in and waiting
        started = time.monotonic()
        echod.signal(signal.SIGTERM)
        waiting.join(timeout=20)
        assert echod.wait(timeout=20) == 0
        assert time.monotonic() - started < 5, "the delay outlived --shutdown-timeout"
        assert [answer.status_code for answer in answers] == [200]
