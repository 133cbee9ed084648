"""schemathesis against a live echod: no 5xx, and every answer as the document says.

The document is the one echod ships (and serves at /openapi.json). For each operation
schemathesis sends its coverage cases (boundaries, missing and wrong credentials, other
methods) and a fixed number of generated requests, valid and invalid, and checks every
answer: no 5xx, a documented status, content type, headers and body, 4xx for invalid
input, 405 with ``Allow`` for other methods, 401 without credentials.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

import schemathesis
from schemathesis import checks

from echod.routes import ROUTES
from tests.contract.support import SCHEMATHESIS_EXAMPLES
from tests.support.patterns import SAFE_REQUEST_ID, UUID4
from tests.support.users import PASSWORD, USER

if TYPE_CHECKING:
    from schemathesis import CheckContext, Response
    from schemathesis.generation.case import Case

    from tests.support.processes import Echod

CONFIG = schemathesis.Config.from_dict(
    {
        "auth": {"basic": {"username": USER, "password": PASSWORD}},
        # Valid and invalid requests; the stateful phase needs links, which echod has none of.
        "generation": {"max-examples": SCHEMATHESIS_EXAMPLES, "mode": "all"},
        "phases": {"stateful": {"enabled": False}},
    }
)
DOCUMENT = json.loads((resources.files("echod") / "openapi.json").read_text(encoding="utf-8"))
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.positive_data_acceptance,
    checks.unsupported_method,
    checks.allow_header_conformance,
    checks.ignored_auth,
]


def request_id_is_kept_when_safe(
    ctx: CheckContext,  # noqa: ARG001 - the signature of a schemathesis check
    response: Response,
    case: Case[Any],  # noqa: ARG001
) -> None:
    """X-Request-ID is the client's when it is safe to repeat, else a new UUID4."""
    sent = response.request.headers.get("X-Request-ID")
    [answered] = response.headers["x-request-id"]
    # The server drops the spaces and tabs around a header value, as RFC 9110 says.
    given = None if sent is None else str(sent).strip(" \t")
    if given is not None and SAFE_REQUEST_ID.fullmatch(given):
        assert answered == given, f"sent X-Request-ID {given!r}, got {answered!r} back"
    else:
        assert UUID4.fullmatch(answered), f"sent X-Request-ID {sent!r}, got {answered!r} back"


# A path that takes WebSockets documents GET, its upgrade, but its Allow names the HTTP
# methods (POST, PUT): a plain GET there is 405. And a generated GET is never a whole
# RFC 6455 handshake, so being refused is its right answer, not a rejection of valid data.
WEBSOCKET_PATHS = frozenset(route.path for route in ROUTES if route.websocket)
# /api/raw answers the request's own bytes under the request's own type: nothing to parse.
RAW_PATH = "/api/raw"


def checks_for(case: Case[Any]) -> list[Any]:
    """The checks that do not apply to ``case``'s operation, for the reasons above."""
    excluded = []
    if case.path in WEBSOCKET_PATHS:
        excluded.append(checks.allow_header_conformance)
        if case.method.upper() == "GET":
            excluded.append(checks.positive_data_acceptance)
    if case.path == RAW_PATH:
        excluded.append(checks.response_schema_conformance)
    return excluded


@schema.parametrize()
def test_operation_answers_as_documented(case: Case[Any], live_echod: Echod) -> None:
    """Every answer to the operation's generated requests is documented, and none is a 5xx."""
    case.call_and_validate(
        base_url=live_echod.url,
        checks=CHECKS,
        additional_checks=[request_id_is_kept_when_safe],
        excluded_checks=checks_for(case),
        timeout=10,
    )
