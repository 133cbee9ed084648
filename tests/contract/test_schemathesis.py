"""schemathesis against a live echod: no 5xx, and every answer as the document says.

The document is the one echod ships (and serves at /openapi.json). For each operation
schemathesis sends its coverage cases (boundaries, missing and wrong credentials, other
methods) and a fixed number of generated requests, valid and invalid, and checks every
answer: no 5xx, a documented status, content type, headers and body, 4xx for invalid
input, 405 with ``Allow`` for other methods, 401 without credentials.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import TYPE_CHECKING, Any

import schemathesis
from schemathesis import checks

from echod.routes import ROUTES
from tests.contract.support import SCHEMATHESIS_EXAMPLES
from tests.support.patterns import SAFE_REQUEST_ID, UUID4
from tests.support.users import PASSWORD, USER

if TYPE_CHECKING:
    from collections.abc import Mapping

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
# Routes that answer any method, the ones OpenAPI 3.1 cannot name (QUERY, CONNECT) too:
# a forward-auth target is asked with the method of the request it checks.
ANY_METHOD_PATHS = frozenset(route.path for route in ROUTES if route.any_method)


# /api/inspect and /api/stream take controls, as a query parameter or (inspect) a header.
CONTROL_HEADERS = {"status": "X-Echod-Status", "delay_ms": "X-Echod-Delay-Ms"}
DIGITS = re.compile(r"[0-9]{1,9}")
STREAM_PATH = "/api/stream"


def _valid(value: object, low: int, high: int) -> bool:
    return DIGITS.fullmatch(str(value)) is not None and low <= int(str(value)) <= high


def tame(case: Case[Any]) -> None:
    """Keep a case's controls true to the contract, and its waits short.

    The query wins over the header of the same control, which echod then does not read,
    so a case that has both loses the header. A valid delay is cut to a few milliseconds
    (still valid), and a stream's events come without pause, so that the suite does not
    wait for minutes (the default interval would take 9 s a case) and no count is over
    ``--max-delay`` for an interval the schema cannot relate to it.
    """
    query = case.query if case.query is not None else {}
    headers = case.headers if case.headers is not None else {}
    for name, header in CONTROL_HEADERS.items():
        if name in query:
            headers.pop(header, None)
    for holder, key in ((query, "delay_ms"), (headers, "X-Echod-Delay-Ms")):
        if _valid(holder.get(key), 0, 10_000):
            holder[key] = type(holder[key])(int(str(holder[key])) % 20)
    if case.path == STREAM_PATH and (
        "interval_ms" not in query or _valid(query["interval_ms"], 0, 10_000)
    ):
        query["interval_ms"] = 0
    case.query, case.headers = query, headers


def forced_status(case: Case[Any]) -> bool:
    """Whether the case asks /api/inspect for its answer's status (tamed first)."""
    query: Mapping[str, Any] = case.query or {}
    headers: Mapping[str, Any] = case.headers or {}
    if "status" in query:
        return _valid(query["status"], 200, 599)
    return _valid(headers.get("X-Echod-Status"), 200, 599)


def checks_for(case: Case[Any]) -> list[Any]:
    """The checks that do not apply to ``case``'s operation, for the reasons above.

    A status asked for is the answer on purpose, be it a 5xx or a 4xx to valid data.
    """
    excluded = []
    if forced_status(case):
        excluded += [checks.not_a_server_error, checks.positive_data_acceptance]
    if case.path in WEBSOCKET_PATHS:
        excluded.append(checks.allow_header_conformance)
        if case.method.upper() == "GET":
            excluded.append(checks.positive_data_acceptance)
    if case.path == RAW_PATH:
        excluded.append(checks.response_schema_conformance)
    if case.path in ANY_METHOD_PATHS:
        excluded.append(checks.unsupported_method)
    return excluded


@schema.parametrize()
def test_operation_answers_as_documented(case: Case[Any], live_echod: Echod) -> None:
    """Every answer to the operation's generated requests is documented, and none is a 5xx."""
    tame(case)
    case.call_and_validate(
        base_url=live_echod.url,
        checks=CHECKS,
        additional_checks=[request_id_is_kept_when_safe],
        excluded_checks=checks_for(case),
        timeout=10,
    )
