"""GET /openapi.json: the shipped document, public like the probes, without a server."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import yaml

from echod.http.openapi import openapi_document
from tests.support.harness import Harness
from tests.support.patterns import UUID4
from tests.support.users import ALICE

SHIPPED = (resources.files("echod") / "openapi.json").read_bytes()


class TestOpenapiDocument:
    def test_is_the_document_of_docs_openapi_yaml(self) -> None:
        """What /openapi.json serves is docs/openapi.yaml, the document people read and edit."""
        source = Path(__file__).parents[2] / "docs" / "openapi.yaml"
        assert json.loads(openapi_document()) == yaml.safe_load(source.read_text())

    def test_is_openapi_3_1(self) -> None:
        """It parses as JSON and says which OpenAPI it is."""
        assert json.loads(openapi_document())["openapi"] == "3.1.0"


class TestOpenapiRoute:
    @pytest.mark.parametrize("method", ["GET", "HEAD"])
    def test_is_served_without_auth_and_not_recorded(self, harness: Harness, method: str) -> None:
        """Like a probe: no credentials, no log line, no count."""
        proto = harness.request(method, "/openapi.json")
        assert proto.response.status == 200
        assert proto.response.header("content-type") == "application/json"
        assert proto.response.body == (SHIPPED if method == "GET" else b"")
        assert harness.log_lines() == []
        assert harness.count("200", method, "/openapi.json") is None

    def test_carries_the_request_id(self, harness: Harness) -> None:
        """A safe client id comes back; otherwise a new UUID4, as on every answer."""
        kept = harness.request("GET", "/openapi.json", headers={"x-request-id": "doc-1"})
        assert kept.response.header("x-request-id") == "doc-1"
        made = harness.request("GET", "/openapi.json", headers={"x-request-id": "bad id"})
        assert UUID4.fullmatch(made.response.header("x-request-id") or "")

    def test_other_methods_are_405_after_auth(self, harness: Harness) -> None:
        """A known path: 401 without credentials, then 405 with Allow, logged and counted."""
        assert harness.request("POST", "/openapi.json").response.status == 401
        proto = harness.request("POST", "/openapi.json", headers={"authorization": ALICE})
        assert proto.response.status == 405
        assert proto.response.header("allow") == "GET, HEAD"
        assert harness.count("405", "POST", "/openapi.json") == 1
        assert [line["status"] for line in harness.log_lines()] == [401, 405]

    def test_is_read_once_when_the_app_is_built(
        self, tmp_path: Path, users: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The app reads the document when a worker builds it, not for each request."""
        reads: list[bytes] = []

        def read() -> bytes:
            reads.append(b'{"openapi":"3.1.0"}')
            return reads[-1]

        monkeypatch.setattr("echod.http.factory.openapi_document", read)
        made = Harness(tmp_path, users)
        assert len(reads) == 1
        for _ in range(3):
            assert made.request("GET", "/openapi.json").response.body == b'{"openapi":"3.1.0"}'
        assert len(reads) == 1
        made.close()
