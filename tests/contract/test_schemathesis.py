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

from echod.http.controls import header_of
from echod.http.shaping import OWN, REFUSED
from echod.routes import ROUTES
from tests.contract.support import SCHEMATHESIS_EXAMPLES
from tests.support.patterns import SAFE_REQUEST_ID, UUID4
from tests.support.users import PASSWORD, USER

if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping

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
    """X-Request-ID is the client's when it is safe to repeat, else a new UUID4.

    A 431 is granian's, sent before echod sees the request: it carries none.
    """
    if response.status_code == 431:
        return
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


# The controls, each a query parameter or its X-Echod-* header; the query wins, and echod
# then does not read the header.
CONTROLS = (
    "status", "delay_ms", "seed", "header", "body", "content_type", "location", "retry_after",
    "encoding", "count", "interval_ms", "bytes", "chunks", "duration_ms", "key", "fail",
    "fail_every", "ttl", "rate", "burst",
)  # fmt: skip
DIGITS = re.compile(r"[0-9]{1,9}")
STATUSES = re.compile(
    r"0{0,6}[2-5][0-9]{2}(?::(?:0{0,3}[0-9]{1,6}|0{0,2}1000000))?"
    r"(?:,0{0,6}[2-5][0-9]{2}(?::(?:0{0,3}[0-9]{1,6}|0{0,2}1000000))?){0,9}"
)
DELAY = re.compile(r"(?:0{0,4}[0-9]{1,4}|0{0,4}10000)(?:-(?:0{0,4}[0-9]{1,4}|0{0,4}10000))?")
HEADER_ITEM = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e]*")
STREAM_PATH = "/api/stream"
DRIP_PATH = "/api/drip"
BYTES_PATH = "/api/bytes/{n}"
# Header names a case may not give echod to add, or that echod documents on its answers
# with a schema of their own (a made-up Retry-After would not be a number): renamed.
TAMED_HEADER_NAMES = frozenset(
    {
        *REFUSED, *OWN, "content-encoding", "retry-after", "location", "etag", "vary",
        "content-range", "accept-ranges", "allow", "www-authenticate", "set-cookie",
    }
)  # fmt: skip
# The controls whose full contract a schema cannot say: a body's size in UTF-8, the total
# of the headers, names refused among valid tokens. Their negative cases may be accepted.
UNSAID = ("header", "body")


def _valid(value: object, low: int, high: int) -> bool:
    return DIGITS.fullmatch(str(value)) is not None and low <= int(str(value)) <= high


def spelled(name: str) -> str:
    """The header of control ``name`` as the document spells it: ``X-Echod-Delay-Ms``."""
    return header_of(name).title()


def _effective(
    query: MutableMapping[str, Any], headers: MutableMapping[str, Any], name: str
) -> tuple[Any, Any]:
    """Where control ``name`` is read from (the query, else its header), and its value."""
    if name in query:
        return query, query[name]
    header = spelled(name)
    return (headers, headers[header]) if header in headers else (None, None)


def _put(holder: MutableMapping[str, Any], name: str, value: int) -> None:
    """Set control ``name`` to ``value`` in ``holder``: a number in the query, text in headers.

    The query's schema is what tells schemathesis the case is valid: it wants a number.
    """
    key = _key(holder, name)
    holder[key] = value if key == name else str(value)


def _pace(
    query: MutableMapping[str, Any], headers: MutableMapping[str, Any], name: str, value: int
) -> None:
    """Set control ``name`` to ``value`` where it is read from, unless it is invalid there.

    A control that is given nowhere is set in the query. An invalid one is left as it
    is: it makes the case a negative one, which echod must refuse.
    """
    holder, given = _effective(query, headers, name)
    if holder is None:
        query[name] = value
    elif _valid(given, 0, 10_000):
        _put(holder, name, value)


def _key(holder: MutableMapping[str, Any], name: str) -> str:
    """The key of control ``name`` in ``holder``, the query or the headers."""
    return name if name in holder else spelled(name)


def _tame_statuses(query: MutableMapping[str, Any], headers: MutableMapping[str, Any]) -> None:
    """A weighted status of nothing weighs 1; a redirection that may be picked gets a Location."""
    holder, value = _effective(query, headers, "status")
    if holder is None or not STATUSES.fullmatch(str(value)):
        return
    entries = [item.partition(":") for item in str(value).split(",")]
    if not any(not colon or int(weight) for _, colon, weight in entries):
        holder[next(key for key in holder if key.lower() in {"status", "x-echod-status"})] = str(
            int(entries[0][0])
        )
    redirects = any(300 <= int(code) < 400 and int(code) != 304 for code, _, _ in entries)
    if redirects and _effective(query, headers, "location")[0] is None:
        query["location"] = "/tamed"


def _tame_delay(holder: MutableMapping[str, Any] | None, key: str) -> None:
    """A valid delay, or range of delays, cut to a few milliseconds (still valid)."""
    if holder is not None and DELAY.fullmatch(str(holder.get(key))):
        low, _, high = str(holder[key]).partition("-")
        holder[key] = (
            f"{int(low) % 20}-{int(low) % 20 + int(high) % 20}" if high else str(int(low) % 20)
        )


def _tame_headers(query: MutableMapping[str, Any], headers: MutableMapping[str, Any]) -> None:
    """Headers asked for keep their values; names echod refuses or documents are renamed."""

    def renamed(item: object) -> object:
        text = str(item)[:100]  # twenty of them, percent-encoded, still fit in the head
        name, colon, value = text.partition(":")
        if HEADER_ITEM.fullmatch(text) and colon and name.lower() in TAMED_HEADER_NAMES:
            return f"X-Tamed-{name}:{value}"
        return text if isinstance(item, str) else item

    if isinstance(query.get("header"), list):
        query["header"] = [renamed(item) for item in query["header"]]
    elif "header" in query:
        query["header"] = renamed(query["header"])
    if isinstance(headers.get("X-Echod-Header"), str):
        headers["X-Echod-Header"] = ",".join(
            str(renamed(item)) for item in headers["X-Echod-Header"].split(",")
        )


def _tame_drip(query: MutableMapping[str, Any], headers: MutableMapping[str, Any]) -> None:
    """Pieces without pause, at most 1,000 bytes, and no more pieces than bytes."""
    _pace(query, headers, "duration_ms", 0)
    holder, size = _effective(query, headers, "bytes")
    if holder is not None and _valid(size, 1, 10 * 1024 * 1024):
        size = int(str(size)) % 1000 + 1
        _put(holder, "bytes", size)
    holder, chunks = _effective(query, headers, "chunks")
    if holder is not None and _valid(chunks, 1, 10_000):
        limit = int(str(size)) if _valid(size, 1, 10 * 1024 * 1024) else 10
        _put(holder, "chunks", min(int(str(chunks)), limit))


def _tame_scenario(query: MutableMapping[str, Any], headers: MutableMapping[str, Any]) -> None:
    """What one control needs of another: a key for a rule or a ttl, a rate for a burst.

    ``fail`` and ``fail_every`` exclude each other: ``fail_every`` goes. Which controls
    need which is said in words in the document; a schema cannot say it.
    """
    given = {name: _effective(query, headers, name)[0] is not None for name in CONTROLS}
    if given["fail"] and given["fail_every"]:
        for holder in (query, headers):
            holder.pop(_key(holder, "fail_every"), None)
        given["fail_every"] = False
    if not given["key"] and (given["fail"] or given["fail_every"] or given["ttl"]):
        query["key"] = "tamed"
    if given["burst"] and not given["rate"]:
        query["rate"] = "1000000/s"


def _tame_body(query: MutableMapping[str, Any], headers: MutableMapping[str, Any]) -> None:
    """A body asked for stays short; a request body says it is unencoded, as it is."""
    for holder, key in ((query, "body"), (headers, "X-Echod-Body")):
        if isinstance(holder.get(key), str):
            holder[key] = holder[key][:1000]
    codings = str(headers.get("Content-Encoding", "")).lower().replace(" ", "").split(",")
    if all(item in {"gzip", "deflate", "br", "zstd", "identity", ""} for item in codings):
        headers.pop("Content-Encoding", None)


def tame(case: Case[Any]) -> None:
    """Keep a case's controls true to the contract, and its waits and sizes small.

    The query wins over the header of the same control, which echod then does not read,
    so a case that has both loses the header. A valid delay is cut to a few milliseconds
    (still valid); a stream's events and a drip's pieces come without pause, so that the
    suite does not wait for minutes, and no pace is over ``--max-delay`` for values that
    the schema cannot relate to each other. What a schema cannot say is made true:
    pieces no more than bytes, a Location for a redirection that may be picked, a
    weighted list that weighs something. A generated body is not encoded, so a valid
    Content-Encoding is left out; a download is at most 100 KB, and a body asked for
    stays short enough for the request's head.
    """
    query = case.query if case.query is not None else {}
    headers: MutableMapping[str, Any] = case.headers
    _tame_statuses(query, headers)
    _tame_delay(*_holder(query, headers, "delay_ms"))
    _tame_headers(query, headers)
    _tame_body(query, headers)
    if case.path == "/api/inspect":
        _tame_scenario(query, headers)
    if case.path == STREAM_PATH:
        _pace(query, headers, "interval_ms", 0)
    if case.path == DRIP_PATH:
        _tame_drip(query, headers)
    size = (case.path_parameters or {}).get("n")
    if case.path == BYTES_PATH and _valid(size, 0, 104_857_600):
        case.path_parameters["n"] = int(str(size)) % 100_000
    for name in CONTROLS:
        if name in query:
            headers.pop(spelled(name), None)
    case.query = query


def _holder(
    query: MutableMapping[str, Any], headers: MutableMapping[str, Any], name: str
) -> tuple[MutableMapping[str, Any] | None, str]:
    """The mapping that carries control ``name`` and its key there."""
    if name in query:
        return query, name
    header = spelled(name)
    return (headers, header) if header in headers else (None, name)


def forced_status(case: Case[Any]) -> bool:
    """Whether the case asks /api/inspect for its answer's status (tamed first).

    A rule that fails attempts on purpose (``fail`` above 0, ``fail_every``) asks for a
    503 by default, and a rate for a 429 once its bucket is empty.
    """
    if case.path != "/api/inspect":
        return False
    query: Mapping[str, Any] = case.query or {}
    headers: Mapping[str, Any] = case.headers or {}
    value = query["status"] if "status" in query else headers.get("X-Echod-Status")
    if STATUSES.fullmatch(str(value)) is not None:
        return True
    holders = {name: _effective(dict(query), dict(headers), name) for name in CONTROLS}
    fail, every, rate = holders["fail"][1], holders["fail_every"][1], holders["rate"][0]
    return _valid(fail, 1, 100) or _valid(every, 1, 100) or rate is not None


def checks_for(case: Case[Any]) -> list[Any]:
    """The checks that do not apply to ``case``'s operation, for the reasons above.

    A status asked for is the answer on purpose, be it a 5xx or a 4xx to valid data. A
    body or type asked for is what the answer holds, whatever the document says of the
    report. A control whose contract no schema can say fully (``UNSAID``) may be
    accepted when the schema would refuse it, and so may a header that echod never sees.
    """
    excluded = []
    query: Mapping[str, Any] = case.query or {}
    headers: Mapping[str, Any] = case.headers or {}
    if forced_status(case):
        excluded += [checks.not_a_server_error, checks.positive_data_acceptance]
    if case.path in WEBSOCKET_PATHS:
        excluded.append(checks.allow_header_conformance)
        if case.method.upper() == "GET":
            excluded.append(checks.positive_data_acceptance)
    if case.path == RAW_PATH:
        excluded.append(checks.response_schema_conformance)
    if case.path == BYTES_PATH and "Range" in headers:
        # A valid range may lie past the end of a short n: a 416 that no schema can foresee.
        excluded.append(checks.positive_data_acceptance)
    shaped = {"body", "content_type"} & set(query) or {
        "X-Echod-Body",
        "X-Echod-Content-Type",
    } & set(headers)
    if shaped:
        excluded += [checks.response_schema_conformance, checks.content_type_conformance]
    if set(UNSAID) & set(query) or {spelled(n) for n in UNSAID} & set(headers):
        excluded.append(checks.negative_data_rejection)
    if any(not str(value).isascii() for value in headers.values()):
        # granian leaves out a header whose value has a byte above 0x7F (obs-text): echod
        # sees no such header, and cannot refuse the value the schema refuses.
        excluded.append(checks.negative_data_rejection)
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
