"""Routes: the table, exact paths, and paths that end in a parameter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from echod.http.answers import NO_STORE, stamp
from echod.http.app import Endpoint
from echod.routes import ROUTES, Route

if TYPE_CHECKING:
    from tests.support.harness import Harness

THINGS = Route("/api/things/{id}", ("GET",))


class TestRoute:
    def test_an_exact_path_has_no_prefix(self) -> None:
        """Every route of the table today is matched exactly."""
        assert {route.prefix for route in ROUTES if "{" not in route.path} == {None}

    @pytest.mark.parametrize(
        ("path", "prefix"),
        [("/api/things/{id}", "/api/things/"), ("/a/{b}", "/a/"), ("/api/things", None)],
        ids=["parameter", "short", "exact"],
    )
    def test_a_trailing_parameter_gives_the_prefix(self, path: str, prefix: str | None) -> None:
        """The path up to the last segment, when that segment is ``{name}``."""
        assert Route(path, ("GET",)).prefix == prefix

    def test_the_argument_is_the_last_segment(self) -> None:
        """What fills the parameter, as the path has it."""
        assert THINGS.argument("/api/things/42") == "42"


class TestParameterRouting:
    @pytest.fixture
    def things(self, harness: Harness) -> list[str]:
        """The app with THINGS served, answering 204; the arguments it got, in order."""
        seen: list[str] = []

        def handler(scope: Any, proto: Any, record: Any, _body: bytes) -> None:
            seen.append(THINGS.argument(scope.path))
            proto.response_empty(204, stamp(record, 204, [NO_STORE]))

        tally = harness.store.layout.tally(THINGS.path)
        harness.app._parameters = (("/api/things/", Endpoint(THINGS, handler, tally)),)
        return seen

    def test_one_segment_fills_the_parameter(self, harness: Harness, things: list[str]) -> None:
        """``/api/things/42`` is THINGS with 42, logged under its own path."""
        assert harness.authed("GET", "/api/things/42").response.status == 204
        assert things == ["42"]
        [line] = harness.log_lines()
        assert line["path"] == "/api/things/42"

    @pytest.mark.parametrize("path", ["/api/things/", "/api/things/4/2", "/api/thing/4"])
    def test_no_segment_or_two_are_not_found(
        self, harness: Harness, things: list[str], path: str
    ) -> None:
        """The parameter is exactly one non-empty segment."""
        assert harness.authed("GET", path).response.status == 404
        assert things == []
