"""Scenarios: attempts counted under a key, token buckets, and the log of ``/api/attempts/{key}``.

On ``/api/inspect``, ``key=`` (or ``X-Echod-Key``) names a scenario, and the request is
an attempt under it: the state (:mod:`echod.state`) numbers it, logs it, and says what to
answer. ``fail=N`` fails the first N attempts with the status asked for (503 by
default, shaped as asked); ``fail_every=K`` fails every K-th; every other attempt of a
key with a rule gets the plain report, 200, at once. ``ttl=`` is how long the key lives
after its last attempt. ``rate=`` (``10/s``, ``600/m``, ``3600/h``) with ``burst=`` puts
the request through a token bucket, the key's, or without a key the user's: without a
token the answer is 429 with ``Retry-After``. Answers of a bucket carry the ``RateLimit``
and ``RateLimit-Policy`` fields of draft-ietf-httpapi-ratelimit-headers-11. A request
with neither ``key=`` nor ``rate=`` never reaches the state.

``GET /api/attempts/{key}`` answers the key's log; ``DELETE`` forgets the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from echod.http.answers import JSON, NO_STORE, send, stamp
from echod.http.controls import Bounds
from echod.http.negotiation import VARY, encode_whole
from echod.http.problems import BadRequest, NotFound, ServiceUnavailable, TooManyRequests
from echod.routes import ATTEMPTS
from echod.state.model import (
    DEFAULT_TTL,
    KEY,
    LOGGED_HEADER_CHARS,
    LOGGED_HEADERS,
    MAX_TTL,
    Ask,
    Limit,
    StateUnavailable,
    render_log,
)
from echod.telemetry.metric_layout import (
    ENCODED,
    FOR_KEYS,
    FOR_SPACE,
    SCENARIO_FAILED,
    SCENARIO_LIMITED,
    SCENARIO_PASSED,
    STATE_ATTEMPT,
    STATE_READ,
    STATE_RESET,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from granian.rsgi import HTTPProtocol, Scope  # type: ignore[attr-defined]

    from echod.http.controls import Controls
    from echod.state.model import Outcome, Store
    from echod.telemetry.metric_layout import Recorder
    from echod.telemetry.records import RequestRecord

__all__ = [
    "ATTEMPT_HEADER",
    "BURST",
    "FAIL",
    "FAIL_EVERY",
    "RATE_COUNT",
    "TTL",
    "Asked",
    "AttemptLog",
    "Scenarios",
    "asked",
]

#: The header of an attempt's number.
ATTEMPT_HEADER = "x-echod-attempt"
#: What each control may be.
FAIL = Bounds(0, 100)
FAIL_EVERY = Bounds(1, 100)
TTL = Bounds(1, MAX_TTL)
RATE_COUNT = Bounds(1, 1_000_000)
BURST = Bounds(1, 1_000_000)
_RATE = re.compile(r"([0-9]{1,9})/([smh])")
_WINDOWS = {"s": 1, "m": 60, "h": 3600}
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Asked:
    """What a request's controls ask of the state."""

    key: str | None
    fail: int
    fail_every: int
    ttl: int
    limit: Limit | None

    @property
    def rule(self) -> bool:
        """Whether some attempts fail on purpose (``fail=`` or ``fail_every=``)."""
        return bool(self.fail or self.fail_every)


def _key(raw: str, source: str) -> str:
    if not KEY.fullmatch(raw):
        raise BadRequest(
            f"{source}={raw[:40]!r} is not a key: 1 to 128 characters of [A-Za-z0-9._:-]"
        )
    return raw


def _rate(raw: str, source: str) -> tuple[int, int]:
    found = _RATE.fullmatch(raw)
    if found is None or not RATE_COUNT.low <= int(found[1]) <= RATE_COUNT.high:
        raise BadRequest(
            f"{source}={raw[:40]!r} is not a rate: a whole number of requests from "
            f"{RATE_COUNT.low} to {RATE_COUNT.high:,} per second, minute or hour, such as "
            "10/s or 600/m"
        )
    return int(found[1]), _WINDOWS[found[2]]


def asked(controls: Controls) -> Asked | None:
    """What the controls ask of the state, or None: neither ``key=`` nor ``rate=``.

    Raises:
        BadRequest: a value is bad, or a control needs another that is missing
            (``fail``, ``fail_every`` and ``ttl`` need ``key``; ``burst`` needs ``rate``),
            or ``fail`` and ``fail_every`` are both given.
    """
    given = controls.text("key")
    key = None if given is None else _key(*given)
    fail = controls.integer("fail", FAIL)
    fail_every = controls.integer("fail_every", FAIL_EVERY)
    ttl = controls.integer("ttl", TTL)
    rate = controls.text("rate")
    burst = controls.integer("burst", BURST)
    if key is None:
        for name, value in (("fail", fail), ("fail_every", fail_every), ("ttl", ttl)):
            if value is not None:
                raise BadRequest(f"{name} counts attempts under a key: give key= too")
    if fail is not None and fail_every is not None:
        raise BadRequest("give fail= or fail_every=, not both")
    if burst is not None and rate is None:
        raise BadRequest("burst is the size of a rate's bucket: give rate= too")
    if key is None and rate is None:
        return None
    limit = None
    if rate is not None:
        count, window = _rate(*rate)
        limit = Limit(count, window, count if burst is None else burst)
    return Asked(key, fail or 0, fail_every or 0, DEFAULT_TTL if ttl is None else ttl, limit)


class Scenarios:
    """What ``/api/inspect`` asks the state, and the headers it adds to the answer."""

    def __init__(self, state: Store | None, instance: str, recorder: Recorder | None) -> None:
        """Ask ``state`` (None: no state, so every scenario is a 503) for ``instance``."""
        self._state = state
        self._instance = instance
        self._pid = os.getpid()
        self._recorder = recorder

    def ask(
        self,
        asked: Asked,
        scope: Scope,
        record: RequestRecord,
        fail_status: int,
        pass_status: int,
    ) -> Ask:
        """The state's question for this request: its attempt, and what to answer it."""
        limit = asked.limit
        if asked.key is None:  # a user's bucket: it lives until it would be full again
            assert limit is not None  # noqa: S101 - asked() returns a limit without a key
            name = f"u:{record.user or ''}"
            ttl = min(MAX_TTL, max(1, round(limit.burst * limit.seconds_per_token())))
            return Ask(
                name,
                keyed=False,
                ttl=ttl,
                fail=0,
                fail_every=0,
                fail_status=fail_status,
                pass_status=pass_status,
                limit=limit,
            )
        headers = {"x-request-id": record.request_id}
        for header in LOGGED_HEADERS:
            value = scope.headers.get(header)
            if value is not None and header not in headers:
                headers[header] = value[:LOGGED_HEADER_CHARS]
        info = _encode(
            {
                "instance": self._instance,
                "pid": self._pid,
                "listener": record.server.rpartition("-")[0] or record.server,
                "httpVersion": record.http_version,
                "method": record.method,
                "path": record.path,
                "headers": headers,
            }
        )
        return Ask(
            f"k:{asked.key}",
            keyed=True,
            ttl=asked.ttl,
            fail=asked.fail,
            fail_every=asked.fail_every,
            fail_status=fail_status,
            pass_status=pass_status,
            limit=limit,
            info=info,
        )

    async def decide(self, asked: Asked, ask: Ask) -> tuple[Outcome, list[tuple[str, str]]]:
        """Ask the state; the outcome, and the headers of the answer.

        Raises:
            ServiceUnavailable: the state cannot be used now (503).
            TooManyRequests: the bucket had no token (429, with ``Retry-After``).
        """
        if self._state is None:
            raise ServiceUnavailable("this echod keeps no state: scenarios are off")
        try:
            outcome = await self._state.attempt(ask)
        except StateUnavailable as error:
            self._count_error(STATE_ATTEMPT)
            raise ServiceUnavailable(error.detail) from None
        recorder = self._recorder
        if recorder is not None:
            if outcome.evicted_for_keys:
                recorder.evicted(FOR_KEYS, outcome.evicted_for_keys)
            if outcome.evicted_for_space:
                recorder.evicted(FOR_SPACE, outcome.evicted_for_space)
            recorder.scenario(
                SCENARIO_LIMITED
                if outcome.limited
                else SCENARIO_FAILED
                if outcome.failed
                else SCENARIO_PASSED
            )
        headers = [] if asked.key is None else [(ATTEMPT_HEADER, str(outcome.attempt))]
        limit = asked.limit
        if limit is not None:
            policy = "key" if asked.key is not None else "user"
            wait = outcome.next_token(limit)
            headers += [
                (
                    "ratelimit-policy",
                    f'"{policy}";q={limit.count};w={limit.window};echod-burst={limit.burst}',
                ),
                ("ratelimit", f'"{policy}";r={outcome.remaining()};t={wait}'),
            ]
            if outcome.limited:
                whose = f"key {asked.key!r}" if asked.key is not None else "this user"
                raise TooManyRequests(
                    f"the rate {limit.count}/{_unit(limit.window)} of {whose} is spent: "
                    f"the next request may pass in {wait} s",
                    (("retry-after", str(wait)), *headers),
                )
        return outcome, headers

    def _count_error(self, operation: int) -> None:
        if self._recorder is not None:
            self._recorder.state_error(operation)

    async def log(self, key: str) -> dict[str, Any]:
        """The answer of ``GET /api/attempts/{key}``.

        Raises:
            NotFound: no live key has that name.
            ServiceUnavailable: the state cannot be used now.
        """
        state = self._live(STATE_READ)
        try:
            found = await state.attempts(key)
        except StateUnavailable as error:
            self._count_error(STATE_READ)
            raise ServiceUnavailable(error.detail) from None
        if found is None:
            raise NotFound(_unknown(key))
        return render_log(key, found)

    async def reset(self, key: str) -> None:
        """Forget ``key``: ``DELETE /api/attempts/{key}``.

        Raises:
            NotFound: no live key has that name.
            ServiceUnavailable: the state cannot be used now.
        """
        state = self._live(STATE_RESET)
        try:
            existed = await state.reset(key)
        except StateUnavailable as error:
            self._count_error(STATE_RESET)
            raise ServiceUnavailable(error.detail) from None
        if not existed:
            raise NotFound(_unknown(key))

    def _live(self, operation: int) -> Store:
        if self._state is None:
            self._count_error(operation)
            raise ServiceUnavailable("this echod keeps no state: scenarios are off")
        return self._state


def _unit(window: int) -> str:
    return {1: "s", 60: "m", 3600: "h"}[window]


def _unknown(key: str) -> str:
    return (
        f"no attempt is kept under the key {key!r}: none came, its ttl passed, or it was "
        "reset or evicted"
    )


class AttemptLog:
    """The handler of ``/api/attempts/{key}`` (see :data:`echod.http.app.Handler`)."""

    def __init__(
        self, scenarios: Scenarios, count: Callable[[int, str], None] = lambda _d, _c: None
    ) -> None:
        """Read and reset through ``scenarios``; ``count`` is told of each answer's coding."""
        self._scenarios = scenarios
        self._count = count

    def __call__(
        self, scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes
    ) -> Coroutine[Any, Any, None]:
        """``GET`` (or ``HEAD``) answers the key's log; ``DELETE`` forgets the key.

        Raises:
            BadRequest: the path's key is not a key.
        """
        key = _key(ATTEMPTS.argument(scope.path), "the key of the path")
        if record.method == "DELETE":
            return self._reset(key, proto, record)
        return self._read(key, scope, proto, record)

    async def _read(
        self, key: str, scope: Scope, proto: HTTPProtocol, record: RequestRecord
    ) -> None:
        content = _encode(await self._scenarios.log(key)) + b"\n"
        headers = [JSON, NO_STORE, VARY]
        coding, content = encode_whole(scope.headers.get("accept-encoding"), content)
        if coding is not None:
            headers.append(("content-encoding", coding))
            self._count(ENCODED, coding)
        send(proto, record.method, 200, stamp(record, 200, headers), content)

    async def _reset(self, key: str, proto: HTTPProtocol, record: RequestRecord) -> None:
        await self._scenarios.reset(key)
        proto.response_empty(204, stamp(record, 204, [NO_STORE]))
