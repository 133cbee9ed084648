"""Records: the one record per request, which feeds the log line and the metrics."""

from __future__ import annotations

import msgspec

__all__ = ["RequestRecord", "Traffic"]


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
    #: Safe to write as it is, as :class:`echod.http.request_ids.RequestIds` makes it.
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
