"""/api/inspect, /api/stream and CORS through the app in this process: answers, logs, counts."""

from __future__ import annotations

import json

import pytest

from echod.http.cors import EXPOSE_HEADERS
from echod.http.drain import MAX_DELAYED
from tests.support.harness import INSTANCE_ID, FakeProto, Harness, MakeHarness
from tests.support.users import ALICE

APP = "https://app.example"


@pytest.fixture
def cors(make_harness: MakeHarness) -> Harness:
    """An app that lets https://app.example call it."""
    return make_harness(cors_origins=(APP,))


class TestInspect:
    def test_the_report_names_the_instance_and_the_user_only(self, harness: Harness) -> None:
        """The instance id the worker was given; alice's name but not her password."""
        answer = harness.authed("GET", "/api/inspect?x=1").response
        report = json.loads(answer.body)
        assert report["instance"] == {"id": INSTANCE_ID}
        assert ["authorization", "Basic alice:<redacted>"] in report["headers"]
        assert b"wonderland" not in answer.body
        assert report["server"] == "127.0.0.1:3000"

    def test_a_delayed_request_over_the_bound_is_503(self, harness: Harness) -> None:
        """With MAX_DELAYED waiting, one more delay is refused with Retry-After: 1."""
        harness.app._drain.held = MAX_DELAYED
        refused = harness.authed("GET", "/api/inspect?delay_ms=10").response
        assert refused.status == 503
        assert refused.header("retry-after") == "1"
        assert refused.header("content-type") == "application/problem+json"
        assert "1000 delays, streams and drips" in json.loads(refused.body)["detail"]
        assert harness.authed("GET", "/api/inspect?delay_ms=0").response.status == 200

    def test_a_stream_takes_a_place_too(self, harness: Harness) -> None:
        """Streams share the bound: with every place taken, a stream is refused before its head."""
        harness.app._drain.held = MAX_DELAYED
        refused = harness.authed("GET", "/api/stream?count=1").response
        assert (refused.status, refused.header("retry-after")) == (503, "1")
        assert b"id:" not in refused.body

    def test_a_delay_ends_and_frees_its_place(self, harness: Harness) -> None:
        """After a delay the count of waiting requests is back to 0."""
        assert harness.authed("GET", "/api/inspect?delay_ms=20").response.status == 200
        assert harness.app._drain.held == 0

    def test_a_delay_whose_client_leaves_is_a_499_at_once(self, harness: Harness) -> None:
        """A client (or a proxy that gave up with its 504) that leaves ends the delay.

        Before, the delay ran to its end and was logged and counted as 200.
        """
        proto = harness.request(
            "GET",
            "/api/inspect?delay_ms=10000",
            headers={"authorization": ALICE},
            proto=FakeProto(leaves_after=0.1),
        )
        assert proto.responses == [], "no one is left to answer"
        [line] = harness.log_lines()
        assert (line["status"], line["level"]) == (499, "warning")
        assert line["detail"] == "the client left before the delayed answer"
        assert line["duration_ms"] < 5000
        assert harness.count("499", "GET", "/api/inspect") == 1
        assert harness.count("200", "GET", "/api/inspect") is None
        assert harness.app._drain.held == 0

    def test_a_delay_whose_client_stays_is_answered(self, harness: Harness) -> None:
        """A client that stays gets its answer after the delay."""
        proto = harness.request(
            "GET",
            "/api/inspect?delay_ms=50",
            headers={"authorization": ALICE},
            proto=FakeProto(leaves_after=5),
        )
        assert proto.response.status == 200

    def test_the_authority_is_reported(self, harness: Harness) -> None:
        """HTTP/2's :authority (granian's scope.authority), or null."""
        report = json.loads(harness.authed("GET", "/api/inspect").response.body)
        assert report["authority"] is None

    def test_a_forced_error_is_logged_with_why(self, harness: Harness) -> None:
        """A forced 4xx or 5xx is logged at its level, saying it was asked for."""
        harness.authed("GET", "/api/inspect?status=502")
        harness.app._log.flush()
        [line] = harness.log_lines()
        assert (line["status"], line["level"]) == (502, "error")
        assert line["detail"] == "the request asked for this status"
        assert "error" not in line

    def test_forced_statuses_are_counted_by_code_or_other(self, harness: Harness) -> None:
        """418 has its own label; 599 is other."""
        harness.authed("GET", "/api/inspect?status=418")
        harness.authed("DELETE", "/api/inspect?status=599")
        assert harness.count("418", "GET", "/api/inspect") == 1
        assert harness.count("other", "DELETE", "/api/inspect") == 1


class TestStream:
    def test_head_is_logged_with_no_events(self, harness: Harness) -> None:
        """HEAD answers at once and logs events 0."""
        answer = harness.authed("HEAD", "/api/stream").response
        assert (answer.status, answer.body) == (200, b"")
        harness.app._log.flush()
        [line] = harness.log_lines()
        assert (line["status"], line["events"]) == (200, 0)

    def test_a_bad_pace_is_a_400(self, harness: Harness) -> None:
        """count=12 at the default second apart lasts 11 s, over --max-delay."""
        answer = harness.authed("GET", "/api/stream?count=12").response
        assert answer.status == 400
        assert "--max-delay" in json.loads(answer.body)["detail"]


class TestCors:
    def test_a_preflight_needs_no_credentials(self, cors: Harness) -> None:
        """204 with the preflight's headers; logged and counted as 204."""
        answer = cors.request(
            "OPTIONS",
            "/api/inspect",
            headers={"origin": APP, "access-control-request-method": "DELETE"},
        ).response
        assert answer.status == 204
        assert answer.header("access-control-allow-methods") == (
            "GET, HEAD, POST, PUT, PATCH, DELETE"
        )
        assert answer.header("access-control-allow-origin") == APP
        assert cors.count("204", "OPTIONS", "/api/inspect") == 1

    def test_a_preflight_elsewhere_than_api_is_not_one(self, cors: Harness) -> None:
        """OPTIONS /health with a request method goes the usual way: 401, no CORS header."""
        answer = cors.request(
            "OPTIONS", "/health", headers={"origin": APP, "access-control-request-method": "GET"}
        ).response
        assert answer.status == 401
        assert answer.header("access-control-allow-origin") is None

    def test_a_500_carries_the_headers(
        self, cors: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A bug's answer is still readable by the page."""

        def explode(_body: bytes) -> bytes:
            raise RuntimeError("boom")

        monkeypatch.setattr("echod.http.echoes.echo", explode)
        answer = cors.request(
            "POST", "/api/echo", b"{}", {"authorization": ALICE, "origin": APP}
        ).response
        assert answer.status == 500
        assert answer.header("access-control-allow-origin") == APP
        assert answer.header("access-control-expose-headers") == EXPOSE_HEADERS
