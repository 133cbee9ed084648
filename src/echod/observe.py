"""Observe: request ids, and the one record per request that feeds the log and the metrics."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from echod.routes import untimed_labels

if TYPE_CHECKING:
    from echod.layout import Recorder
    from echod.logs import AccessLog

__all__ = [
    "CLIENT_GONE",
    "HTTP_VERSIONS",
    "Answer",
    "Observer",
    "RequestIds",
    "RequestRecord",
    "Traffic",
]

#: What the status of a request is recorded as when the client left before the answer.
CLIENT_GONE = 499
#: How granian names each HTTP version, and how echod writes it.
HTTP_VERSIONS = {"1": "1.0", "1.0": "1.0", "1.1": "1.1", "2": "2"}
# A client's id is kept when it is safe to repeat in a header and a log line.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}").fullmatch
# New ids are made this many at a time.
_BATCH = 64
_VARIANT = "89ab"  # RFC 9562 section 4.1: the two top bits of the variant field are 10


class RequestIds:
    """Gives each request its id: the client's, when safe, or a new random UUID4.

    New ids are made in batches from one read of random bytes, which halves their cost.
    Make one per process: a batch made before a fork would repeat in each child.
    """

    __slots__ = ("_ready",)

    def __init__(self) -> None:
        """Start with no ids made."""
        self._ready: list[str] = []

    def __call__(self, given: str | None) -> str:
        """Return ``given`` when it is 1-128 of ``[A-Za-z0-9._:-]``; otherwise a new UUID4."""
        if given is not None and _CLIENT_ID(given):
            return given
        return self.new()

    def new(self) -> str:
        """Return a new random UUID4 (RFC 9562) in its usual 8-4-4-4-12 form."""
        if not self._ready:
            h = os.urandom(16 * _BATCH).hex()
            self._ready = [
                f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
                f"{_VARIANT[int(h[i + 16], 16) & 3]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
                for i in range(0, 32 * _BATCH, 32)
            ]
        return self._ready.pop()


class Traffic(msgspec.Struct):
    """What went through one WebSocket: messages and bytes each way, and what closed it."""

    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    #: "client", "idle", "shutdown" or "limit" (a message over --max-body-bytes).
    closed_by: str = "client"

    def count_in(self, size: int) -> None:
        """One message of ``size`` bytes from the client."""
        self.messages_in += 1
        self.bytes_in += size

    def count_out(self, size: int) -> None:
        """One message of ``size`` bytes to the client."""
        self.messages_out += 1
        self.bytes_out += size


class Answer(NamedTuple):
    """What a handler that has more to say than its status returns instead of the status."""

    status: int
    #: For a 4xx or 5xx that is no problem of echod's (a status the request asked for).
    detail: str | None = None
    #: The events a stream sent.
    events: int | None = None


class RequestRecord(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """What one answered request was, made once and read by the log line and the metrics.

    Its fields are given by name. A msgspec struct is made in a fraction of the time of a
    named tuple or a slotted class, which matters once per request.
    """

    #: The request's method, as the client sent it.
    method: str
    #: The path the client sent (percent-decoded by the server).
    path: str
    #: The metrics' ``path`` label: the route's, or ``unmatched``.
    route: str
    #: The HTTP version: "1.0", "1.1" or "2".
    http_version: str
    status: int
    duration_ms: float
    #: Safe to write as it is, as :class:`RequestIds` makes it.
    request_id: str
    #: The verified user, or None.
    user: str | None
    #: The client's address, as the server's ``host:port`` text.
    remote: str
    #: What was wrong, for an answer of 400 or more: the problem's detail.
    detail: str | None = None
    #: The exception behind a 500, logged with its traceback.
    error: BaseException | None = None
    #: What went through a WebSocket (status 101), or None for plain HTTP.
    websocket: Traffic | None = None
    #: The events a stream sent, or None for any other answer.
    events: int | None = None


class Observer:
    """Records each answered request once: a log line and a metrics observation."""

    __slots__ = ("_log", "_recorder", "_untimed")

    def __init__(self, log: AccessLog, recorder: Recorder) -> None:
        """Feed ``log`` and ``recorder``."""
        self._log = log
        self._recorder = recorder
        self._untimed = untimed_labels()

    def record(self, record: RequestRecord) -> None:
        """Count ``record`` under its route's label, then log it.

        A WebSocket, and a request to a route that is not timed (``/api/inspect`` and
        ``/api/stream``), is counted in ``http_requests_total`` but not in the durations:
        it lasts as long as its client asks, and would set off the latency alerts.
        """
        if record.websocket is None and record.route not in self._untimed:
            self._recorder.observe(record.status, record.method, record.route, record.duration_ms)
        else:
            self._recorder.count(record.status, record.method, record.route)
        self._log.request(record)
