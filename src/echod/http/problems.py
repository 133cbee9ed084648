"""Problems: the one hierarchy of HTTP problems, and the one place that renders them.

Every answer other than a 2xx is a :class:`Problem`, rendered as RFC 9457 problem
details (``application/problem+json``) that carry the request id::

    Problem                      any error answer; status 500 unless a subclass says
    ├── BadRequest               400  the body is empty, not JSON, not an object, ...
    ├── Unauthorized             401  credentials missing, malformed or wrong
    │   └── InvalidToken         401  a bearer token that is malformed or not valid
    ├── Forbidden                403  a WebSocket from another site's page
    ├── NotFound                 404  no such path
    ├── MethodNotAllowed         405  the path exists, not with this method (``Allow``)
    ├── NotAcceptable            406  ``Accept-Encoding`` refuses every coding echod writes
    ├── RequestTimeout           408  the body did not arrive within ``--body-timeout``
    ├── PayloadTooLarge          413  the body is over ``--max-body-bytes``, as sent or decoded
    ├── UnsupportedMediaType     415  a ``Content-Encoding`` echod does not decode
    ├── RangeNotSatisfiable      416  a ``Range`` outside the bytes (``Content-Range``)
    ├── UpgradeRequired          426  a WebSocket handshake that lost its ``Upgrade`` on the way
    ├── TooManyRequests          429  a ``rate=`` whose bucket has no token (``Retry-After``)
    └── ServiceUnavailable       503  draining, too many passwords waiting to be hashed, or
                                      the state store cannot be used

:class:`echod.settings.config.ConfigError` is apart: it stops echod before it serves.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar

import msgspec

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "BadRequest",
    "Forbidden",
    "InvalidToken",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "PayloadTooLarge",
    "Problem",
    "RangeNotSatisfiable",
    "RequestTimeout",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "UpgradeRequired",
    "bearer_challenge",
    "render_problem",
    "title",
]

PROBLEM_CONTENT_TYPE = "application/problem+json"

_encode = msgspec.json.Encoder().encode


class Problem(Exception):  # noqa: N818 - an RFC 9457 "problem", not an "error" by name
    """An error answer: a status, a human-readable detail and extra response headers."""

    status: ClassVar[int] = 500

    def __init__(self, detail: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Describe the problem in ``detail``; ``headers`` go on the response as they are."""
        super().__init__(detail)
        self.detail = detail
        self.headers = headers

    @property
    def title(self) -> str:
        """The reason phrase of the status, as RFC 9110 names it."""
        return title(self.status)


def title(status: int) -> str:
    """RFC 9110's reason phrase of ``status``, the same whatever the Python version.

    Python before 3.13 names 413 "Request Entity Too Large", after RFC 2616, and 416
    "Requested Range Not Satisfiable", after RFC 7233.
    """
    return _TITLES.get(status) or HTTPStatus(status).phrase


_TITLES = {413: "Content Too Large", 416: "Range Not Satisfiable"}


class BadRequest(Problem):
    """The request body cannot be echoed."""

    status = 400


class Unauthorized(Problem):
    """Credentials are missing, malformed or wrong (RFC 7617)."""

    status = 401
    #: The challenge of the Basic scheme (RFC 7617 section 2.1 defines ``charset``).
    CHALLENGE: ClassVar[tuple[str, str]] = (
        "www-authenticate",
        'Basic realm="echod", charset="UTF-8"',
    )
    #: Both schemes, when bearer tokens are taken too and no credentials came (RFC 6750
    #: section 3.1: no error code then). One field, not two: nginx 1.22's auth_request
    #: passes on a single ``WWW-Authenticate`` field.
    BOTH: ClassVar[tuple[str, str]] = (
        "www-authenticate",
        'Basic realm="echod", charset="UTF-8", Bearer realm="echod"',
    )

    def __init__(self, detail: str, challenge: tuple[str, str] | None = None) -> None:
        """Say why the credentials were refused; ``challenge`` (Basic's by default) is added."""
        super().__init__(detail, (challenge or self.CHALLENGE,))


class InvalidToken(Unauthorized):
    """A bearer token is malformed, or not valid (RFC 6750 section 3.1, ``invalid_token``).

    The detail is also the challenge's ``error_description``, so it must never quote the
    token or any part of it, and must hold printable ASCII without quotes or backslashes.
    """

    def __init__(self, detail: str, *, lasting: bool = True) -> None:
        """Describe why the token was refused, in the words the challenge repeats.

        ``lasting`` is False when the same token may be valid later (not valid yet).
        """
        super().__init__(detail, bearer_challenge(detail))
        self.lasting = lasting


def bearer_challenge(reason: str) -> tuple[str, str]:
    """The ``WWW-Authenticate`` field of a refused bearer token (RFC 6750 section 3).

    ``error_description`` may hold only printable ASCII without quotes and backslashes:
    any other character of ``reason`` is dropped.
    """
    description = "".join(char for char in reason if char.isascii() and char.isprintable())
    description = description.replace('"', "").replace("\\", "")
    return (
        "www-authenticate",
        f'Bearer realm="echod", error="invalid_token", error_description="{description}"',
    )


class Forbidden(Problem):
    """The request is understood and refused, whoever sends it (a cross-site WebSocket)."""

    status = 403


class NotFound(Problem):
    """No route has this path."""

    status = 404


class MethodNotAllowed(Problem):
    """The path exists, but not for this method."""

    status = 405

    def __init__(self, method: str, allow: str) -> None:
        """Name the refused method and send ``allow``, the methods that exist, as ``Allow``."""
        super().__init__(f"{method} is not allowed here; use {allow}", (("allow", allow),))


class NotAcceptable(Problem):
    """The client refuses an unencoded answer and takes none of echod's codings."""

    status = 406


class RequestTimeout(Problem):
    """The body did not arrive in time; the connection is closed after the answer."""

    status = 408

    def __init__(self, detail: str) -> None:
        """Describe the timeout; the answer asks for the connection to close."""
        super().__init__(detail, (("connection", "close"),))


class PayloadTooLarge(Problem):
    """The body is over the configured limit."""

    status = 413


class UnsupportedMediaType(Problem):
    """The body is encoded in a way echod does not decode.

    The answer lists the codings echod does decode in ``Accept-Encoding``, as RFC 9110
    section 15.5.16 suggests.
    """

    status = 415

    def __init__(self, detail: str, accepted: str | None = None) -> None:
        """Describe the refused coding; ``accepted`` lists those echod decodes, if any."""
        super().__init__(detail, () if accepted is None else (("accept-encoding", accepted),))


class RangeNotSatisfiable(Problem):
    """No byte of the ``Range`` asked for exists: ``Content-Range`` says how many do."""

    status = 416

    def __init__(self, detail: str, size: int) -> None:
        """Describe the range; ``size`` is the length of the whole representation."""
        super().__init__(detail, (("content-range", f"bytes */{size}"),))


class UpgradeRequired(Problem):
    """A WebSocket handshake arrived without its ``Upgrade``: something on the way dropped it.

    The answer names the protocol to upgrade to (RFC 9110 section 15.5.22).
    """

    status = 426

    def __init__(self, detail: str) -> None:
        """Describe what arrived; ``Upgrade: websocket`` goes with the answer."""
        super().__init__(detail, (("upgrade", "websocket"), ("connection", "upgrade")))


class TooManyRequests(Problem):
    """A rate's bucket has no token: the headers say when the next one comes."""

    status = 429


class ServiceUnavailable(Problem):
    """echod cannot take this request now; the client may retry after ``Retry-After``."""

    status = 503

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        """Describe the condition; ``Retry-After`` is ``retry_after`` seconds."""
        super().__init__(detail, (("retry-after", str(retry_after)),))


def render_problem(problem: Problem, instance: str, request_id: str) -> bytes:
    """Return the RFC 9457 body of ``problem`` for the request to ``instance``."""
    return _encode(
        {
            "type": "about:blank",
            "title": problem.title,
            "status": problem.status,
            "detail": problem.detail,
            "instance": instance,
            "requestId": request_id,
        }
    )
