"""Forwarded: what the proxies in front claim about a request (RFC 7239 and X-Forwarded-*).

These claims are reported by ``/api/inspect`` as they were sent, and trusted for
nothing: a client can send any of them. Each source is reported on its own, so that a
claim the client forged never hides what a proxy added:

- ``forwarded``: each element of ``Forwarded`` (RFC 7239), in order, as its parameters
  (names in lower case, values unquoted);
- ``xForwardedFor``, ``xForwardedProto``, ``xForwardedHost`` and ``xForwardedPort``: the
  items of each header, in order (a proxy that appends adds one at the end);
- ``xRealIp``: each value of ``X-Real-IP``.

Absent headers are ``[]``. Values are kept as sent: ports, brackets, ``unknown`` and
obfuscated names included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from granian.rsgi import Headers  # type: ignore[attr-defined]

__all__ = ["SOURCES", "elements", "forwarded"]

#: Each field of the report's ``forwarded`` that lists a header's items, and its header.
SOURCES = (
    ("xForwardedFor", "x-forwarded-for"),
    ("xForwardedProto", "x-forwarded-proto"),
    ("xForwardedHost", "x-forwarded-host"),
    ("xForwardedPort", "x-forwarded-port"),
)


def forwarded(headers: Headers) -> dict[str, Any]:
    """What ``Forwarded``, ``X-Forwarded-*`` and ``X-Real-IP`` say, each on its own."""
    report: dict[str, Any] = {
        "forwarded": list(elements(headers.get_all("forwarded"))),  # type: ignore[attr-defined]
    }
    for field, name in SOURCES:
        report[field] = [
            item.strip()
            for value in headers.get_all(name)  # type: ignore[attr-defined]
            for item in value.split(",")
            if item.strip()
        ]
    report["xRealIp"] = [
        value.strip()
        for value in headers.get_all("x-real-ip")  # type: ignore[attr-defined]
        if value.strip()
    ]
    return report


def elements(values: list[str]) -> Iterator[dict[str, str]]:
    """The elements of ``Forwarded`` header values, each as its lower-cased parameters."""
    for value in values:
        for element in _split(value, ","):
            pairs = {}
            for pair in _split(element, ";"):
                name, equals, raw = pair.partition("=")
                if equals and name.strip():
                    pairs[name.strip().lower()] = _unquote(raw.strip())
            if pairs:
                yield pairs


def _split(text: str, separator: str) -> Iterator[str]:
    """``text`` cut at ``separator`` outside quoted strings (RFC 9110 5.6.4)."""
    part: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            yield "".join(part)
            part = []
            continue
        part.append(char)
    yield "".join(part)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':  # noqa: PLR2004 - both quotes
        inner, out, escaped = value[1:-1], [], False
        for char in inner:
            if char == "\\" and not escaped:
                escaped = True
                continue
            out.append(char)
            escaped = False
        return "".join(out)
    return value
