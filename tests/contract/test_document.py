"""The OpenAPI document: valid, shipped as its YAML says, and true to echod's routes."""

from __future__ import annotations

import json
from importlib import metadata, resources
from typing import Any

import pytest
import schemathesis

from echod.http.problems import title
from echod.routes import ROUTES
from echod.telemetry.metric_layout import OWN_STATUSES
from echod.version import __version__
from scripts.openapi import SOURCE, TARGET, render

DOCUMENT: dict[str, Any] = json.loads(
    (resources.files("echod") / "openapi.json").read_text(encoding="utf-8")
)
OPERATIONS = {
    f"{method.upper()} {path}": (path, operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
}


class TestDocument:
    def test_the_shipped_json_is_the_yaml(self) -> None:
        """src/echod/openapi.json is what make openapi makes of docs/openapi.yaml."""
        expected = render(SOURCE.read_text(encoding="utf-8"))
        assert TARGET.read_text(encoding="utf-8") == expected, "stale: run make openapi"

    def test_is_valid_openapi_3_1(self) -> None:
        """The document passes the OpenAPI 3.1 meta-schema."""
        assert DOCUMENT["openapi"] == "3.1.0"
        schemathesis.openapi.from_dict(DOCUMENT).validate()

    def test_version_is_echods(self) -> None:
        """info.version follows the package."""
        assert DOCUMENT["info"]["version"] == __version__

    def test_paths_and_methods_are_the_routes(self) -> None:
        """Every route with its methods (and GET where it takes WebSockets), nothing else."""
        documented = {
            path: tuple(sorted(method.upper() for method in item))
            for path, item in DOCUMENT["paths"].items()
        }
        assert documented == {
            route.path: tuple(sorted({*route.methods, *(("GET",) if route.websocket else ())}))
            for route in ROUTES
        }

    def test_the_websocket_upgrades_are_the_routes_that_take_them(self) -> None:
        """GET on an echo route is its WebSocket, with the upgrade's answers."""
        upgrades = {
            path for path, (_, operation) in OPERATIONS.items() if "websocket" in operation["tags"]
        }
        assert upgrades == {f"GET {route.path}" for route in ROUTES if route.websocket}
        for name in upgrades:
            assert {"101", "401", "403", "405", "503"} <= set(OPERATIONS[name][1]["responses"])

    @pytest.mark.parametrize(("path", "operation"), OPERATIONS.values(), ids=OPERATIONS.keys())
    def test_security_is_basic_auth_where_the_route_needs_it(
        self, path: str, operation: dict[str, Any]
    ) -> None:
        """Routes without auth override the document's auth with none; the others keep it.

        The document's auth is Basic or, with a key set, a bearer token.
        """
        assert DOCUMENT["security"] == [{"basic": []}, {"bearerAuth": []}]
        route = next(each for each in ROUTES if each.path == path)
        if route.probe:
            assert operation["security"] == []
        else:
            assert "security" not in operation
            assert "401" in operation["responses"]

    def test_every_status_echod_answers_is_described(self) -> None:
        """The statuses echod counts (499 is never sent) all have a problem schema.

        The WebSocket's refusals (401, 403, 503) are bare statuses, without a body, so 403
        needs no problem schema; 101, 200, 204 (a CORS preflight), 206 (a range) and 304
        (a tag that matches) are no problems.
        """
        described = {
            schema["allOf"][1]["properties"]["status"]["const"]
            for name, schema in DOCUMENT["components"]["schemas"].items()
            if name.endswith("Problem") and name != "Problem"
        }
        assert described | {101, 200, 204, 206, 304, 403} == set(OWN_STATUSES) - {499}

    def test_problem_titles_are_the_reason_phrases(self) -> None:
        """Each problem schema's title is the one echod renders for its status."""
        for name, schema in DOCUMENT["components"]["schemas"].items():
            if not name.endswith("Problem") or name == "Problem":
                continue
            properties = schema["allOf"][1]["properties"]
            assert properties["title"]["const"] == title(properties["status"]["const"])

    def test_echod_needs_no_yaml_at_run_time(self) -> None:
        """Serving the document takes no YAML parser: none is a run-time dependency."""
        runtime = [
            requirement
            for requirement in metadata.requires("echod") or []
            if "extra ==" not in requirement
        ]
        assert runtime
        assert not [name for name in runtime if "yaml" in name.lower()]
