"""Model: what one request asks of the state, what the state answers, and the rules of both.

A request to ``/api/inspect`` with a key is an attempt: the state counts it (its
number, from 1), logs it, and says what it is answered, by its key's rule (``fail=N``:
the first N fail; ``fail_every=K``: every K-th fails). With a rate, a token bucket
(under the key, or the user without one) may refuse it first (429). All of it is one
atomic step of the store, so that two workers, or two replicas, never count the same
attempt twice or let one token go to two requests.

The stores (:mod:`echod.state.local` and :mod:`echod.state.remote`) keep the same
bounds: at most :data:`MAX_ATTEMPTS` entries per key (the oldest are dropped, and
counted), at most :data:`MAX_KEYS` live keys (the least recently used is evicted), and
a key is forgotten ``ttl`` seconds after its last attempt. The token bucket's arithmetic
is :func:`refill`; the remote store's script does the same sums.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "DEFAULT_TTL",
    "KEY",
    "LOGGED_HEADERS",
    "LOGGED_HEADER_CHARS",
    "MAX_ATTEMPTS",
    "MAX_KEYS",
    "MAX_TTL",
    "Ask",
    "Entry",
    "Limit",
    "Log",
    "Outcome",
    "StateUnavailable",
    "Store",
    "decide",
    "refill",
    "render_log",
]

#: A key: 1 to 128 characters of ``[A-Za-z0-9._:-]``, as a request id.
KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: Entries kept per key; past them the oldest is dropped and counted.
MAX_ATTEMPTS = 1000
#: Live keys (and buckets) at once; past them the least recently used is evicted.
MAX_KEYS = 10_000
#: Seconds a key lives after its last attempt, by default and at most.
DEFAULT_TTL = 600
MAX_TTL = 86_400
#: The request headers an entry keeps, when the request has them: those that say who
#: sent it, through what, and which retry of which request it is.
LOGGED_HEADERS = (
    "x-request-id",
    "x-forwarded-for",
    "user-agent",
    "traceparent",
    "x-envoy-attempt-count",
    "x-retry-attempt",
)
#: The characters of a header's value an entry keeps.
LOGGED_HEADER_CHARS = 256
_MICROS = 1_000_000
_decode_info = msgspec.json.Decoder(dict[str, Any]).decode


class StateUnavailable(Exception):  # noqa: N818 - a condition of the store, said as such
    """The store cannot answer now (unreachable, too slow, full); ``detail`` says why."""

    def __init__(self, detail: str) -> None:
        """Say why, in words a client may read."""
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Limit:
    """A token bucket: ``count`` tokens every ``window`` seconds, at most ``burst`` saved."""

    count: int
    window: int
    burst: int

    def seconds_per_token(self) -> float:
        """How long the bucket takes to earn one token."""
        return self.window / self.count


@dataclass(frozen=True, slots=True)
class Ask:
    """What one request asks of the state: its attempt under a key, and a token."""

    #: The store's name of the key (``k:<key>``) or of the user's bucket (``u:<user>``).
    name: str
    #: Whether this is an attempt under a key (counted and logged), or a bucket alone.
    keyed: bool
    #: Seconds the key lives after this attempt.
    ttl: int
    #: The first ``fail`` attempts fail (0: none).
    fail: int
    #: Every ``fail_every``-th attempt fails (0: none).
    fail_every: int
    #: What a failing attempt is answered, and what any other one is.
    fail_status: int
    pass_status: int
    limit: Limit | None
    #: The entry's facts that the request knows (instance, pid, listener, version,
    #: method, path, headers), as a JSON object: the store adds the rest.
    info: bytes = b"{}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the state made of one request."""

    #: The attempt's number under its key, from 1; 0 for a bucket alone.
    attempt: int
    #: What to answer: 429 when the bucket had no token, ``fail_status`` when the rule
    #: says this attempt fails, ``pass_status`` otherwise.
    status: int
    limited: bool
    failed: bool
    #: The tokens left in the bucket after this request (0 without a limit).
    tokens: float = 0.0
    #: Keys evicted to make room for this one: to stay within :data:`MAX_KEYS`, and to
    #: fit in the store's reserved space.
    evicted_for_keys: int = 0
    evicted_for_space: int = 0

    def remaining(self) -> int:
        """Whole tokens left: the ``r`` of the ``RateLimit`` field."""
        return math.floor(self.tokens)

    def next_token(self, limit: Limit) -> int:
        """Whole seconds, at least 1, until one more whole token is in the bucket.

        The ``t`` of the ``RateLimit`` field, and the ``Retry-After`` of a 429: within it,
        no more than :meth:`remaining` requests can pass.
        """
        short = math.floor(self.tokens) + 1 - self.tokens
        return max(1, math.ceil(short * limit.seconds_per_token() - 1e-9))


@dataclass(frozen=True, slots=True)
class Entry:
    """One attempt as the store keeps it."""

    attempt: int
    #: When it arrived, in microseconds of Unix time (the store's clock).
    time_us: int
    status: int
    #: Microseconds since the attempt before it, or None for the first.
    since_us: int | None
    #: The JSON object of :attr:`Ask.info`, as text or decoded.
    info: bytes | dict[str, Any]


@dataclass(frozen=True, slots=True)
class Log:
    """Every attempt kept under a key, in order, and how many older ones were dropped."""

    entries: Sequence[Entry]
    dropped: int


class Store(Protocol):
    """Where the state lives. Each operation is atomic: it happens whole, or not at all.

    Raises:
        StateUnavailable: from any operation, when the store cannot answer now.
    """

    #: The store, as the log and the problems name it.
    name: str

    async def attempt(self, ask: Ask) -> Outcome:
        """Count, log and decide one request."""
        ...

    async def attempts(self, key: str) -> Log | None:
        """The log of ``key``, or None when no live key has that name."""
        ...

    async def reset(self, key: str) -> bool:
        """Forget ``key``, its log and its bucket; whether it was there."""
        ...

    def close(self) -> None:
        """Let go of the store (the process stops)."""
        ...


def refill(tokens: float | None, filled_us: int | None, now_us: int, limit: Limit) -> float:
    """The tokens of a bucket at ``now_us``: what it had at ``filled_us``, plus what it earned.

    A bucket seen for the first time is full. The clock may not run backwards here: a
    step back earns nothing. The remote store's script does the same sum.
    """
    if tokens is None or filled_us is None:
        return float(limit.burst)
    earned = max(0, now_us - filled_us) * limit.count / (limit.window * _MICROS)
    return min(float(limit.burst), tokens + earned)


def decide(ask: Ask, attempt: int, tokens: float | None) -> tuple[Outcome, float | None]:
    """What to answer attempt ``attempt`` that found ``tokens`` (refilled) in its bucket.

    Returns the outcome and the tokens to keep (one fewer when it took one).
    """
    if tokens is not None and tokens < 1:
        return Outcome(attempt, 429, limited=True, failed=False, tokens=tokens), tokens
    left = None if tokens is None else tokens - 1
    failing = ask.keyed and (
        (ask.fail and attempt <= ask.fail) or (ask.fail_every and attempt % ask.fail_every == 0)
    )
    status = ask.fail_status if failing else ask.pass_status
    outcome = Outcome(attempt, status, limited=False, failed=bool(failing), tokens=left or 0.0)
    return outcome, left


def _rfc3339(time_us: int) -> str:
    seconds, micros = divmod(time_us, _MICROS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def render_log(key: str, log: Log) -> dict[str, Any]:
    """The answer of ``GET /api/attempts/{key}``: the key, its attempts in order, the dropped."""
    attempts = []
    for entry in log.entries:
        info = entry.info if isinstance(entry.info, dict) else _decode_info(entry.info)
        attempts.append(
            {
                "attempt": entry.attempt,
                "time": _rfc3339(entry.time_us),
                "instance": info.get("instance"),
                "pid": info.get("pid"),
                "listener": info.get("listener"),
                "httpVersion": info.get("httpVersion"),
                "method": info.get("method"),
                "path": info.get("path"),
                "status": entry.status,
                "sinceMs": None if entry.since_us is None else round(entry.since_us / 1000, 3),
                "headers": info.get("headers", {}),
            }
        )
    return {"key": key, "attempts": attempts, "dropped": log.dropped}
