"""/api/inspect shaped by its request, through the app in this process: status, headers, body."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

if TYPE_CHECKING:
    from tests.support.harness import Harness

ALLOW = "GET, HEAD, POST, PUT, PATCH, DELETE"


class TestShapedAnswer:
    def test_headers_and_body_replace_the_report(self, harness: Harness) -> None:
        """body= is the body, under content_type=, with the headers asked for."""
        query = "body=%3Ch1%3Ehi%3C%2Fh1%3E&content_type=text%2Fhtml&header=X-A%3A%201"
        answer = harness.authed("GET", f"/api/inspect?{query}").response
        assert answer.body == b"<h1>hi</h1>"
        assert answer.header("content-type") == "text/html"
        assert answer.header("x-a") == "1"
        assert answer.header("cache-control") == "no-store"

    def test_a_body_s_type_is_plain_text_by_default(self, harness: Harness) -> None:
        """Without content_type=, body= is text/plain in UTF-8."""
        answer = harness.authed("GET", "/api/inspect?body=h%C3%A9").response
        assert (answer.body, answer.header("content-type")) == (
            "hé".encode(),
            "text/plain; charset=utf-8",
        )

    def test_the_report_may_be_given_another_type(self, harness: Harness) -> None:
        """content_type= alone relabels the report."""
        answer = harness.authed("GET", "/api/inspect?content_type=text/plain").response
        assert answer.header("content-type") == "text/plain"
        assert json.loads(answer.body)["method"] == "GET"

    def test_the_request_may_replace_cache_control(self, harness: Harness) -> None:
        """To test a cache in front, the answer may say it can be stored."""
        answer = harness.authed("GET", "/api/inspect?header=Cache-Control%3Amax-age%3D60").response
        assert answer.headers["cache-control"] == "max-age=60"

    def test_head_has_the_body_s_length(self, harness: Harness) -> None:
        """HEAD carries the Content-Length of body=."""
        answer = harness.authed("HEAD", "/api/inspect?body=12345").response
        assert (answer.body, answer.header("content-length")) == (b"", "5")

    @pytest.mark.parametrize(
        ("query", "name", "value"),
        [
            pytest.param("status=401", "www-authenticate", 'Basic realm="echod"', id="401"),
            pytest.param("status=405", "allow", ALLOW, id="405"),
            pytest.param("status=302&location=%2Fthere", "location", "/there", id="302"),
            pytest.param("status=201&location=%2Fnew", "location", "/new", id="201-location"),
            pytest.param("status=429", "retry-after", "1", id="429"),
            pytest.param("status=503&retry_after=30", "retry-after", "30", id="503-retry-after"),
        ],
    )
    def test_a_forced_status_gets_the_header_it_needs(
        self, harness: Harness, query: str, name: str, value: str
    ) -> None:
        """RFC 9110's companions of each status, with the report as body."""
        answer = harness.authed("GET", f"/api/inspect?{query}").response
        assert answer.header(name) == value
        assert json.loads(answer.body)["method"] == "GET"

    def test_a_redirection_without_a_location_is_a_400(self, harness: Harness) -> None:
        """Even when it might only be picked: 302 weighs 1 in 100 here."""
        answer = harness.authed("GET", "/api/inspect?status=200:99,302:1").response
        assert answer.status == 400
        assert "location" in json.loads(answer.body)["detail"]

    def test_a_weighted_pick_is_said_in_a_header(self, harness: Harness) -> None:
        """X-Echod-Chosen names the status and delay the answer got."""
        answer = harness.authed(
            "GET", "/api/inspect?status=200:1,418:1&delay_ms=0-3&seed=5"
        ).response
        chosen = answer.header("x-echod-chosen") or ""
        assert chosen == f"status={answer.status}; delay_ms={chosen.rsplit('=', 1)[1]}"
        assert answer.status in {200, 418}

    def test_every_control_may_be_a_header(self, harness: Harness) -> None:
        """X-Echod-Body, X-Echod-Content-Type, X-Echod-Header, X-Echod-Status, X-Echod-Location."""
        answer = harness.authed(
            "GET",
            "/api/inspect",
            b"",
            **{
                "x-echod-body": "moved",
                "x-echod-content-type": "text/plain",
                "x-echod-header": "X-B: 2",
                "x-echod-status": "308",
                "x-echod-location": "https://example.com/",
            },
        ).response
        assert (answer.status, answer.body) == (308, b"moved")
        assert answer.header("x-b") == "2"
        assert answer.header("location") == "https://example.com/"

    def test_a_bad_header_is_a_400_naming_the_control(self, harness: Harness) -> None:
        """A refused name is answered as a problem, not shaped."""
        answer = harness.authed("GET", "/api/inspect?header=" + quote("Connection: close")).response
        assert answer.status == 400
        assert answer.header("content-type") == "application/problem+json"
        assert "header" in json.loads(answer.body)["detail"]
