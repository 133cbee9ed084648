"""Answers: how echod sends an HTTP answer, whatever the route: headers, problems, HEAD.

Every answer under ``/api/`` carries ``X-Request-ID``, ``X-Response-Time`` and
``Cache-Control: no-store``; :func:`stamp` is the one place that adds the first two,
and it writes the status and the duration it reports into the request's record, so
the header and the log line say the same. Every JSON body over HTTP ends with a
newline. An answer to ``HEAD`` carries the ``Content-Length`` that ``GET`` would have
and no body, over every protocol.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from echod.http.problems import PROBLEM_CONTENT_TYPE, render_problem

if TYPE_CHECKING:
    from granian.rsgi import HTTPProtocol  # type: ignore[attr-defined]

    from echod.http.problems import Problem
    from echod.telemetry.records import RequestRecord

__all__ = [
    "CLIENT_GONE",
    "CLOSE",
    "HTTP_VERSIONS",
    "JSON",
    "NO_STORE",
    "PROBLEM",
    "WithHeaders",
    "problem_body",
    "send",
    "send_problem",
    "stamp",
]

JSON = ("content-type", "application/json")
PROBLEM = ("content-type", PROBLEM_CONTENT_TYPE)
#: On probes, metrics and every /api answer, so that no cache in front keeps one.
NO_STORE = ("cache-control", "no-store")
#: On every answer of a stopping worker, so that the client sends no more on the connection.
CLOSE = ("connection", "close")
#: What the status of a request is recorded as when the client left before the answer.
CLIENT_GONE = 499
#: How granian names each HTTP version, and how echod writes it.
HTTP_VERSIONS = {"1": "1.0", "1.0": "1.0", "1.1": "1.1", "2": "2"}

_now = time.perf_counter


def stamp(
    record: RequestRecord, status: int, headers: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """``headers`` with the request's id and its time so far; both go into ``record`` too.

    ``X-Response-Time`` is the time from the request's arrival to this answer's head, in
    milliseconds with three decimals. The record keeps ``status`` and that duration.
    """
    duration_ms = (_now() - record.started) * 1000.0
    text = f"{duration_ms:.3f}"
    record.status = status
    record.duration_ms = record.stamped_ms = duration_ms
    record.duration_text = text
    headers.append(("x-request-id", record.request_id))
    headers.append(("x-response-time", text + "ms"))
    return headers


def problem_body(problem: Problem, path: str, rid: str) -> bytes:
    """The problem's JSON, ended by a newline as every JSON answer over HTTP is."""
    return render_problem(problem, path, rid) + b"\n"


def send(
    proto: HTTPProtocol, method: str, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    """Answer; to ``HEAD``, with the ``Content-Length`` of ``body`` and no body (RFC 9110 9.3.2).

    granian drops the body of a HEAD answer over HTTP/1.1 but sends it over HTTP/2, where
    clients then fail: no answer to HEAD carries one.
    """
    if method == "HEAD":
        headers.append(("content-length", str(len(body))))
        body = b""
    proto.response_bytes(status, headers, body)


def send_problem(proto: HTTPProtocol, record: RequestRecord, problem: Problem) -> None:
    """Answer with ``problem`` as RFC 9457 problem details; its detail goes into ``record``."""
    record.detail = problem.detail
    body = problem_body(problem, record.path, record.request_id)
    headers = stamp(record, problem.status, [PROBLEM, NO_STORE, *problem.headers])
    send(proto, record.method, problem.status, headers, body)


class WithHeaders:
    """An RSGI HTTP protocol that adds headers of its own to whatever answer is sent."""

    __slots__ = ("_extra", "_proto")

    def __init__(self, proto: HTTPProtocol, extra: list[tuple[str, str]]) -> None:
        """Send through ``proto``, with ``extra`` headers on the answer."""
        self._proto = proto
        self._extra = extra

    def __call__(self) -> object:
        """Read the whole body."""
        return self._proto()

    def __aiter__(self) -> object:
        """Read the body in chunks."""
        return self._proto.__aiter__()

    def client_disconnect(self) -> object:
        """What ends when the client's connection closes."""
        return self._proto.client_disconnect()

    def __anext__(self) -> object:
        """The next chunk of a body whose reading began (granian's protocol iterates itself)."""
        return self._proto.__anext__()  # type: ignore[attr-defined]

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Answer with a body."""
        self._proto.response_bytes(status, [*headers, *self._extra], body)

    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None:
        """Answer without a body."""
        self._proto.response_empty(status, [*headers, *self._extra])

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> object:
        """Answer with a stream."""
        return self._proto.response_stream(status, [*headers, *self._extra])

    def response_file(self, status: int, headers: list[tuple[str, str]], file: str) -> None:
        """Answer with what granian reads from ``file`` (a pipe, for a long download)."""
        self._proto.response_file(status, [*headers, *self._extra], file)
