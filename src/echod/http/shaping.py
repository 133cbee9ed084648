"""Shaping: the headers and the body that a request asks ``/api/inspect`` to answer with.

- ``header=Name:Value`` adds a header to the answer; it is repeatable, as is its header
  form ``X-Echod-Header: Name: Value``. At most :data:`MAX_HEADERS` of them, of
  :data:`MAX_HEADER_BYTES` in all (names and values). The name is an RFC 9110 token and
  the value visible ASCII, spaces and tabs. Framing and hop-by-hop headers are refused
  (:data:`REFUSED`, and ``Proxy-*``), and so are those that echod writes itself for
  the request (:data:`OWN`). One the request sets replaces echod's own
  ``Cache-Control``; with ``Content-Encoding`` set, echod compresses nothing.
- ``body=`` (at most :data:`MAX_BODY_BYTES` of UTF-8) replaces the report as the body,
  under ``content_type=`` (:data:`DEFAULT_TYPE` by default; the report's own is JSON).
- A status gets the header it needs, unless the request sets that header itself: 401
  ``WWW-Authenticate``, 405 ``Allow``, a 3xx other than 304 the ``Location`` of
  ``location=``, without which it is refused, and 429 and 503 ``Retry-After``, of
  ``retry_after=`` seconds (1 by default). ``location=`` and ``retry_after=`` go on any
  answer they are given with (a 201 with its ``Location``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from echod.http.controls import Bounds, number
from echod.http.problems import BadRequest

if TYPE_CHECKING:
    from collections.abc import Iterable

    from echod.http.controls import Controls

__all__ = [
    "DEFAULT_TYPE",
    "MAX_BODY_BYTES",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "OWN",
    "REFUSED",
    "RETRY_AFTER",
    "Shape",
    "shape",
]

#: The most headers one answer may be given.
MAX_HEADERS = 20
#: The most bytes of names and values they may have in all.
MAX_HEADER_BYTES = 8 * 1024
#: The longest ``body=``, in bytes of UTF-8.
MAX_BODY_BYTES = 64 * 1024
#: The type of a ``body=`` without ``content_type=``.
DEFAULT_TYPE = "text/plain; charset=utf-8"
#: Framing and hop-by-hop headers (RFC 9110 section 7.6.1 and RFC 9112): only the server
#: may write them. Any ``Proxy-*`` header is refused too.
REFUSED = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
)
#: Headers echod writes for the request itself, and the control to use instead.
OWN = {
    "content-type": "content_type=",
    "x-request-id": "the request's own X-Request-ID",
    "x-response-time": "nothing: echod measures it",
    "x-echod-chosen": "nothing: echod says what it picked",
}
#: Seconds to wait that a 429 or 503 says without ``retry_after=``.
RETRY_AFTER = 1
_RETRY_AFTER = Bounds(0, 86_400)
_LONGEST_LOCATION = 2048
_LONGEST_TYPE = 256
_CHALLENGE = ("www-authenticate", 'Basic realm="echod"')
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\t\x20-\x7e]*")
_LOCATION = re.compile(r"[\x21-\x7e]+")
_TYPE = re.compile(
    r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+/[!#$%&'*+\-.^_`|~0-9A-Za-z]+([ \t]*;[\t\x20-\x7e]*)?"
)
_NO_CONTENT = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class Shape:
    """The headers and body a request asks for, and the status-needed headers it sets."""

    #: The headers given, names in lower case, in their order.
    headers: tuple[tuple[str, str], ...] = ()
    #: The body that replaces the report, or None.
    body: bytes | None = None
    #: The answer's type, or None for the default.
    content_type: str | None = None
    location: str | None = None
    retry_after: int | None = None

    def sets(self, name: str) -> bool:
        """Whether the request gives the header ``name`` (in lower case) itself."""
        return any(given == name for given, _ in self.headers)

    def headers_for(self, status: int, allow: str) -> list[tuple[str, str]]:
        """The headers to add to an answer of ``status`` (``allow``: the route's methods)."""
        added = list(self.headers)
        if self.location is not None and not self.sets("location"):
            added.append(("location", self.location))
        waits = status in {429, 503} or self.retry_after is not None
        if waits and not self.sets("retry-after"):
            retry = RETRY_AFTER if self.retry_after is None else self.retry_after
            added.append(("retry-after", str(retry)))
        if status == 401 and not self.sets("www-authenticate"):  # noqa: PLR2004
            added.append(_CHALLENGE)
        elif status == 405 and not self.sets("allow"):  # noqa: PLR2004
            added.append(("allow", allow))
        return added

    def check(self, statuses: Iterable[int]) -> None:
        """Refuse a 3xx that may be answered without a ``Location``.

        Raises:
            BadRequest: a 3xx other than 304 is among ``statuses``, and neither
                ``location=`` nor ``header=Location:...`` is given.
        """
        if self.location is not None or self.sets("location"):
            return
        for status in sorted(statuses):
            if 300 <= status < 400 and status not in _NO_CONTENT:  # noqa: PLR2004
                raise BadRequest(
                    f"status {status} is a redirection, which needs location= "
                    "(or X-Echod-Location): the URL it points at"
                )


def shape(controls: Controls) -> Shape:
    """The shape the controls ask for.

    Raises:
        BadRequest: a header, the body, the type, the location or the wait is not as
            the module says; the detail names the control.
    """
    body = content_type = location = None
    if (given := controls.text("body")) is not None:
        raw, source = given
        body = raw.encode()
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"{source} has {len(body)} bytes; at most {MAX_BODY_BYTES} may be")
    if (given := controls.text("content_type")) is not None:
        content_type, source = given
        if len(content_type) > _LONGEST_TYPE or not _TYPE.fullmatch(content_type):
            raise BadRequest(
                f"{source}={content_type[:40]!r} is not a media type such as text/html"
            )
    if (given := controls.text("location")) is not None:
        location, source = given
        if len(location) > _LONGEST_LOCATION or not _LOCATION.fullmatch(location):
            raise BadRequest(
                f"{source}={location[:40]!r} is not a URL of 1 to {_LONGEST_LOCATION} visible "
                "ASCII characters"
            )
    retry_after = None
    if (given := controls.text("retry_after")) is not None:
        retry_after = number(*given, _RETRY_AFTER)
    values, source = controls.texts("header")
    return Shape(_headers(values, source), body, content_type, location, retry_after)


def _headers(values: list[str], source: str) -> tuple[tuple[str, str], ...]:
    if len(values) > MAX_HEADERS:
        raise BadRequest(f"{source} is given {len(values)} times; at most {MAX_HEADERS} may be")
    headers = []
    for item in values:
        raw_name, colon, raw_value = item.partition(":")
        name, value = raw_name.lower(), raw_value.strip(" \t")
        if not colon or not _TOKEN.fullmatch(raw_name):
            raise BadRequest(f"{source}={item[:40]!r} is not Name:Value with a token for a name")
        if not _VALUE.fullmatch(value):
            raise BadRequest(
                f"{source}={item[:40]!r} has a value that is not visible ASCII, space or tab"
            )
        if name in REFUSED or name.startswith("proxy-"):
            raise BadRequest(f"{source} may not set {raw_name}: only the server frames answers")
        if name in OWN:
            raise BadRequest(f"{source} may not set {raw_name}; use {OWN[name]}")
        headers.append((name, value))
    size = sum(len(name) + len(value) for name, value in headers)
    if size > MAX_HEADER_BYTES:
        raise BadRequest(
            f"{source} adds {size} bytes of headers; at most {MAX_HEADER_BYTES} may be"
        )
    return tuple(headers)
