"""Answers: how echod sends an HTTP answer, whatever the route: headers, problems, HEAD.

Every JSON body over HTTP ends with a newline. An answer to ``HEAD`` carries the
``Content-Length`` that ``GET`` would have and no body, over every protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from echod.errors import PROBLEM_CONTENT_TYPE, render_problem

if TYPE_CHECKING:
    from granian.rsgi import HTTPProtocol  # type: ignore[attr-defined]

    from echod.errors import Problem

__all__ = ["CLOSE", "JSON", "NO_STORE", "PROBLEM", "problem_body", "send"]

JSON = ("content-type", "application/json")
PROBLEM = ("content-type", PROBLEM_CONTENT_TYPE)
#: On probes, metrics and every /api answer, so that no cache in front keeps one.
NO_STORE = ("cache-control", "no-store")
#: On every answer of a stopping worker, so that the client sends no more on the connection.
CLOSE = ("connection", "close")


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
