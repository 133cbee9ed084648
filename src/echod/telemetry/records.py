"""Records: the one record per request, which feeds the log line and the metrics."""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from echod.telemetry.metric_layout import Tally

__all__ = ["Original", "RequestRecord", "Traffic", "failure"]


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


class Original(msgspec.Struct, gc=False):
    """The request a proxy asks ``/auth/verify`` about, as its headers describe it."""

    method: str | None = None
    #: The path and query, with the values of ``access_token`` parameters redacted.
    uri: str | None = None
    host: str | None = None
    proto: str | None = None


class RequestRecord(msgspec.Struct, kw_only=True, gc=False):
    """One request, from its arrival to its answer: what the log line and the metrics read.

    The app makes it as the request arrives, with what is known then; the answer fills in
    the status and the duration (:func:`echod.http.answers.stamp`), and the parts that
    answered add what they know. It is recorded once, when the request is done. A msgspec
    struct is made in a fraction of the time of a named tuple or a slotted class, which
    matters once per request; it holds no object that could refer back to it, so the
    garbage collector need not track it.
    """

    #: The request's method, as the client sent it.
    method: str
    #: The path the client sent (percent-decoded by the server).
    path: str
    #: What the request is counted under: its route's label, timing and place.
    tally: Tally
    #: The HTTP version: "1.0", "1.1" or "2".
    http_version: str
    #: Safe to write as it is, as :class:`echod.http.request_ids.RequestIds` makes it.
    request_id: str
    #: The client's address, as the server's ``host:port`` text.
    remote: str
    #: When the request arrived, on the :func:`time.perf_counter` clock.
    started: float
    #: Which server of the process took it ("http-0", "https-1"): a reload that replaces
    #: a server ends that server's long requests alone.
    server: str = ""
    #: The status answered; 0 until an answer is sent.
    status: int = 0
    #: Milliseconds from the arrival to the answer (to the end, for a WebSocket or a stream).
    duration_ms: float = 0.0
    #: The duration the answer's head reported (``X-Response-Time``), and its text with
    #: three decimals: the log line reuses the text while the duration is unchanged,
    #: instead of formatting the same number a second time.
    stamped_ms: float = -1.0
    duration_text: str = ""
    #: The verified user (a bearer token's ``sub``), or None.
    user: str | None = None
    #: How ``user`` was verified, "basic" or "bearer". It says nothing while ``user`` is
    #: None (the log writes null then): Basic, the common case, is the default, so that
    #: its requests need not set it.
    scheme: str = "basic"
    #: What was wrong, for an answer of 400 or more: the problem's detail.
    detail: str | None = None
    #: The exception behind a 500, as its ``repr`` and its formatted traceback.
    error: tuple[str, str] | None = None
    #: What went through a WebSocket (status 101), or None for plain HTTP.
    websocket: Traffic | None = None
    #: The events a stream sent, or None for any other answer.
    events: int | None = None
    #: The original request of a forward-auth check (``/auth/verify``), or None.
    original: Original | None = None


def failure(error: BaseException) -> tuple[str, str]:
    """What a record keeps of the exception behind a 500: its ``repr`` and its traceback.

    Text, not the exception: a record holds nothing that could refer back to it.
    """
    return repr(error), "".join(traceback.format_exception(error))
