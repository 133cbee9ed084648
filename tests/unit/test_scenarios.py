"""Scenarios through the app: key=, fail=, fail_every=, ttl=, rate=, burst=, /api/attempts/{key}."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from echod.http.scenarios import asked
from echod.state.model import Ask, Log, Outcome, StateUnavailable
from tests.support.harness import FakeHeaders, FakeScope
from tests.support.users import ALICE

if TYPE_CHECKING:
    from tests.support.harness import Harness, MakeHarness, Response


def get(harness: Harness, path: str, **headers: str) -> Response:
    """A GET as alice, and its one answer."""
    return harness.request("GET", path, headers={"authorization": ALICE, **headers}).response


def errors(harness: Harness, operation: str) -> float | None:
    """One echod_state_errors_total sample."""
    labels = {"operation": operation}
    return harness.registry.get_sample_value("echod_state_errors_total", labels)


def scenario_requests(harness: Harness, result: str) -> float | None:
    """One echod_scenario_requests_total sample."""
    labels = {"result": result}
    return harness.registry.get_sample_value("echod_scenario_requests_total", labels)


class TestAttempts:
    def test_fail_fails_the_first_attempts_then_the_report_comes(self, harness: Harness) -> None:
        """fail=2: 503, 503 (with Retry-After), then 200 and the report, numbered."""
        answers = [get(harness, "/api/inspect?key=k&fail=2") for _ in range(3)]
        assert [a.status for a in answers] == [503, 503, 200]
        assert [a.header("x-echod-attempt") for a in answers] == ["1", "2", "3"]
        assert answers[0].header("retry-after") == "1"
        assert answers[2].header("retry-after") is None
        assert json.loads(answers[2].body)["path"] == "/api/inspect"
        assert scenario_requests(harness, "failed") == 2
        assert scenario_requests(harness, "passed") == 1

    def test_failures_are_shaped_as_asked_and_passes_are_plain(self, harness: Harness) -> None:
        """status, header and body shape the failing answers; the passing one is the report."""
        path = "/api/inspect?key=s&fail=1&status=429&retry_after=7&header=X-A:b&body=nope"
        first, second = get(harness, path), get(harness, path)
        assert (first.status, first.body, first.header("x-a")) == (429, b"nope", "b")
        assert first.header("retry-after") == "7"
        assert (second.status, second.header("x-a")) == (200, None)
        assert json.loads(second.body)["query"].startswith("key=s")

    def test_fail_every_fails_every_kth(self, harness: Harness) -> None:
        """fail_every=2: 200, 503, 200, 503."""
        statuses = [get(harness, "/api/inspect?key=e&fail_every=2").status for _ in range(4)]
        assert statuses == [200, 503, 200, 503]

    def test_a_key_alone_logs_and_answers_as_asked(self, harness: Harness) -> None:
        """Without a rule, every control applies to every attempt, which is numbered."""
        answers = [get(harness, "/api/inspect?key=plain&status=418") for _ in range(2)]
        assert [(a.status, a.header("x-echod-attempt")) for a in answers] == [
            (418, "1"),
            (418, "2"),
        ]

    def test_the_header_form_of_each_control(self, harness: Harness) -> None:
        """X-Echod-Key and X-Echod-Fail, for clients that cannot change the URL."""
        answer = get(harness, "/api/inspect", **{"x-echod-key": "h", "x-echod-fail": "1"})
        assert (answer.status, answer.header("x-echod-attempt")) == (503, "1")

    def test_the_log_says_who_came_when_and_what_they_got(self, harness: Harness) -> None:
        """GET /api/attempts/{key}: each attempt, with its request id and retry headers."""
        get(harness, "/api/inspect?key=log&fail=1", **{"x-request-id": "r-1"})
        get(harness, "/api/inspect?key=log&fail=1", **{"x-envoy-attempt-count": "2"})
        answer = get(harness, "/api/attempts/log")
        assert answer.status == 200
        assert answer.header("content-type") == "application/json"
        assert answer.header("cache-control") == "no-store"
        log = json.loads(answer.body)
        assert (log["key"], log["dropped"]) == ("log", 0)
        first, second = log["attempts"]
        assert (first["attempt"], first["status"], first["sinceMs"]) == (1, 503, None)
        assert (second["attempt"], second["status"]) == (2, 200)
        assert second["sinceMs"] >= 0
        assert first["headers"] == {"x-request-id": "r-1"}
        assert second["headers"]["x-envoy-attempt-count"] == "2"
        assert first["instance"] == "00000000-0000-4000-8000-000000000000"
        assert (first["method"], first["path"], first["httpVersion"]) == (
            "GET",
            "/api/inspect",
            "1.1",
        )

    def test_a_long_header_is_cut_in_the_log(self, harness: Harness) -> None:
        """256 characters of a header's value at most."""
        get(harness, "/api/inspect?key=cut", **{"user-agent": "u" * 1000})
        log = json.loads(get(harness, "/api/attempts/cut").body)
        assert log["attempts"][0]["headers"]["user-agent"] == "u" * 256

    def test_delete_forgets_the_key_and_an_unknown_one_is_404(self, harness: Harness) -> None:
        """204, then 404 for the key gone, and 404 for a GET of it."""
        get(harness, "/api/inspect?key=gone")
        deleted = harness.request("DELETE", "/api/attempts/gone", headers={"authorization": ALICE})
        assert (deleted.response.status, deleted.response.body) == (204, b"")
        again = harness.request("DELETE", "/api/attempts/gone", headers={"authorization": ALICE})
        assert again.response.status == 404
        missing = get(harness, "/api/attempts/gone")
        assert missing.status == 404
        assert "no attempt is kept under the key 'gone'" in json.loads(missing.body)["detail"]
        assert get(harness, "/api/inspect?key=gone").header("x-echod-attempt") == "1"

    def test_head_has_the_length_of_get(self, harness: Harness) -> None:
        """HEAD of a log: its headers, and no body."""
        get(harness, "/api/inspect?key=head")
        answer = harness.request("HEAD", "/api/attempts/head", headers={"authorization": ALICE})
        length = len(get(harness, "/api/attempts/head").body)
        assert answer.response.header("content-length") == str(length)
        assert answer.response.body == b""

    def test_another_method_is_405(self, harness: Harness) -> None:
        """POST on a log: 405 with its Allow."""
        answer = harness.request("POST", "/api/attempts/x", headers={"authorization": ALICE})
        assert answer.response.status == 405
        assert answer.response.header("allow") == "GET, HEAD, DELETE"


class TestRate:
    def test_the_burst_passes_then_429_with_the_rate_limit_fields(self, harness: Harness) -> None:
        """rate=2/m: two pass, with RateLimit; the third is 429 with Retry-After."""
        answers = [get(harness, "/api/inspect?key=r&rate=2/m") for _ in range(3)]
        assert [a.status for a in answers] == [200, 200, 429]
        policy = '"key";q=2;w=60;echod-burst=2'
        assert {a.header("ratelimit-policy") for a in answers} == {policy}
        assert [a.header("ratelimit") for a in answers] == [
            '"key";r=1;t=30',
            '"key";r=0;t=30',
            '"key";r=0;t=30',
        ]
        refused = answers[2]
        assert refused.header("retry-after") == "30"
        assert refused.header("x-echod-attempt") == "3"
        assert refused.header("content-type") == "application/problem+json"
        problem = json.loads(refused.body)
        assert (problem["status"], problem["title"]) == (429, "Too Many Requests")
        assert problem["detail"] == (
            "the rate 2/m of key 'r' is spent: the next request may pass in 30 s"
        )
        assert scenario_requests(harness, "limited") == 1

    def test_without_a_key_the_bucket_is_the_users(self, harness: Harness) -> None:
        """rate= alone: one bucket per user, named "user", and no attempt number."""
        answers = [get(harness, "/api/inspect?rate=1/h&burst=2") for _ in range(3)]
        assert [a.status for a in answers] == [200, 200, 429]
        assert answers[0].header("ratelimit") == '"user";r=1;t=3600'
        assert answers[0].header("x-echod-attempt") is None
        assert answers[2].header("retry-after") == "3600"

    def test_an_attempt_refused_by_the_rate_is_logged_as_429(self, harness: Harness) -> None:
        """The log holds every arrival, the refused ones too."""
        for _ in range(2):
            get(harness, "/api/inspect?key=rl&rate=1/m")
        log = json.loads(get(harness, "/api/attempts/rl").body)
        assert [a["status"] for a in log["attempts"]] == [200, 429]


BAD = [
    ("key=", "key='' is not a key"),
    ("key=a%20b", "key='a b' is not a key"),
    ("key=" + "k" * 129, "is not a key"),
    ("key=%C3%A9", "is not a key"),
    ("key=a&key=b", "key is given 2 times"),
    ("key=k&fail=101", "fail='101' is not a whole number from 0 to 100"),
    ("key=k&fail=-1", "fail='-1'"),
    ("key=k&fail_every=0", "fail_every='0' is not a whole number from 1 to 100"),
    ("key=k&ttl=0", "ttl='0' is not a whole number from 1 to 86400"),
    ("key=k&ttl=86401", "ttl='86401'"),
    ("key=k&ttl=99999999999999", "ttl="),
    ("key=k&fail=1&fail_every=2", "give fail= or fail_every=, not both"),
    ("fail=1", "fail counts attempts under a key: give key= too"),
    ("fail_every=1", "fail_every counts attempts under a key"),
    ("ttl=5", "ttl counts attempts under a key"),
    ("burst=5", "burst is the size of a rate's bucket: give rate= too"),
    ("rate=0/s", "rate='0/s' is not a rate"),
    ("rate=1e9/s", "rate='1e9/s' is not a rate"),
    ("rate=1000001/s", "is not a rate"),
    ("rate=10", "is not a rate"),
    ("rate=10/d", "is not a rate"),
    ("rate=-1/s", "is not a rate"),
    ("rate=10/s&burst=0", "burst='0' is not a whole number from 1 to 1000000"),
    ("rate=10/s&burst=1000001", "burst="),
]


@pytest.mark.parametrize(("query", "detail"), BAD, ids=[q for q, _ in BAD])
def test_a_bad_control_is_a_400_that_names_it_and_touches_no_state(
    harness: Harness, query: str, detail: str
) -> None:
    """Checked before the state is asked: nothing is counted or logged."""
    answer = get(harness, "/api/inspect?" + query)
    assert answer.status == 400
    assert detail in json.loads(answer.body)["detail"]
    assert scenario_requests(harness, "passed") == 0


@pytest.mark.parametrize(
    "path", ["/api/attempts/a%20b", "/api/attempts/" + "k" * 129, "/api/attempts/{key}"]
)
def test_a_bad_key_in_the_path_is_a_400(harness: Harness, path: str) -> None:
    """The key of the path follows the same pattern as key=."""
    answer = get(harness, path.replace("%20", " "))
    assert answer.status == 400
    assert "is not a key" in json.loads(answer.body)["detail"]


class Spy:
    """A store that answers from a script and remembers what it was asked."""

    name = "a spy"

    def __init__(self, failure: str | None = None) -> None:
        """Fail every operation with ``failure``, or pass every attempt."""
        self.asked: list[Any] = []
        self.failure = failure

    async def attempt(self, ask: Ask) -> Outcome:
        """Pass, or fail as told."""
        self.asked.append(ask)
        if self.failure:
            raise StateUnavailable(self.failure)
        return Outcome(1, ask.pass_status, limited=False, failed=False)

    async def attempts(self, key: str) -> Log | None:
        """Nothing, or fail."""
        self.asked.append(key)
        if self.failure:
            raise StateUnavailable(self.failure)
        return None

    async def reset(self, key: str) -> bool:
        """Nothing, or fail."""
        self.asked.append(key)
        if self.failure:
            raise StateUnavailable(self.failure)
        return False

    def close(self) -> None:
        """Nothing to close."""


def with_state(harness: Harness, state: Spy) -> Harness:
    """``harness``'s app, asking ``state`` instead of its own store."""
    inspector = harness.app._endpoints["/api/inspect"].handler
    inspector._scenarios._state = state  # type: ignore[union-attr]
    return harness


class TestStateUnavailable:
    @pytest.fixture
    def down(self, harness: Harness) -> Harness:
        """The app of a store that cannot be reached."""
        return with_state(harness, Spy("the state store redis://x:6379/0 cannot be used: no"))

    def test_a_scenario_is_a_503_that_says_so_and_is_counted(self, down: Harness) -> None:
        """503, Retry-After, the store's reason; echod_state_errors_total counts it."""
        answer = get(down, "/api/inspect?key=k")
        assert answer.status == 503
        assert answer.header("retry-after") == "1"
        detail = json.loads(answer.body)["detail"]
        assert detail == "the state store redis://x:6379/0 cannot be used: no"
        assert errors(down, "attempt") == 1

    def test_everything_else_is_answered_as_ever(self, down: Harness) -> None:
        """The echo, a plain inspection and the probes do not touch the state."""
        assert down.authed(body=b"{}").response.status == 200
        assert get(down, "/api/inspect?status=201").status == 201
        assert down.request("GET", "/ready").response.status == 200

    def test_the_log_and_its_reset_are_503_too(self, down: Harness) -> None:
        """Reads and resets count under their own operation."""
        assert get(down, "/api/attempts/k").status == 503
        deleted = down.request("DELETE", "/api/attempts/k", headers={"authorization": ALICE})
        assert deleted.response.status == 503
        assert (errors(down, "read"), errors(down, "reset")) == (1, 1)


def test_a_request_without_key_or_rate_never_asks_the_state(harness: Harness) -> None:
    """Controls of every other kind, bad ones included: the store hears of none of them."""
    spy = Spy()
    with_state(harness, spy)
    for path in (
        "/api/inspect",
        "/api/inspect?status=503&delay_ms=0&header=X-A:b",
        "/api/inspect?status=nope",
        "/api/inspect?fail=1",
    ):
        get(harness, path)
    harness.authed(body=b"{}")
    assert spy.asked == []
    get(harness, "/api/inspect?key=k")
    assert len(spy.asked) == 1


def test_without_a_state_a_scenario_is_503(make_harness: MakeHarness) -> None:
    """An app built without a store (as a benchmark builds it) refuses scenarios clearly."""
    harness = make_harness()
    inspector = harness.app._endpoints["/api/inspect"].handler
    inspector._scenarios._state = None  # type: ignore[union-attr]
    answer = get(harness, "/api/inspect?key=k")
    assert answer.status == 503
    assert "keeps no state" in json.loads(answer.body)["detail"]


def test_asked_is_none_without_key_or_rate() -> None:
    """The cheap path: a request of neither kind is no scenario."""
    scope = FakeScope("GET", "/api/inspect", FakeHeaders(), query_string="status=200")
    from echod.http.controls import Controls  # noqa: PLC0415 - the unit under test's input

    assert asked(Controls(scope)) is None  # type: ignore[arg-type]


def test_the_attempt_header_is_exposed_to_pages() -> None:
    """A page of a listed origin may read the attempt and the rate limit fields."""
    from echod.http.cors import EXPOSE_HEADERS  # noqa: PLC0415

    exposed = set(EXPOSE_HEADERS.split(", "))
    assert {"x-echod-attempt", "ratelimit", "ratelimit-policy", "retry-after"} <= exposed


def test_a_scenario_request_waits_for_the_store_without_blocking(harness: Harness) -> None:
    """The handler is a coroutine when it asks the state: the loop runs meanwhile."""
    inspector = harness.app._endpoints["/api/inspect"].handler
    scope = FakeScope("GET", "/api/inspect", FakeHeaders({"host": "h"}), query_string="key=co")
    from tests.support.harness import FakeProto, new_record  # noqa: PLC0415

    waiting = inspector(scope, FakeProto(), new_record("GET", "/api/inspect"), b"")  # type: ignore[misc, arg-type]
    assert asyncio.iscoroutine(waiting)
    asyncio.run(waiting)
