"""Forwarded: what the proxies in front claim about a request (RFC 7239 and X-Forwarded-*).

These claims are reported by ``/api/inspect`` as they were sent, and trusted for
nothing: a client can send any of them.

- ``for`` lists the addresses in order: each ``Forwarded`` element's ``for=``, or else
  the items of ``X-Forwarded-For``, kept as sent (ports, brackets, ``unknown`` and
  obfuscated names included);
- ``proto`` and ``host`` come from the first ``Forwarded`` element that has them, or
  else from ``X-Forwarded-Proto`` and ``X-Forwarded-Host``;
- ``realIp`` is ``X-Real-IP``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from granian.rsgi import Headers  # type: ignore[attr-defined]

__all__ = ["elements", "forwarded"]


def forwarded(headers: Headers) -> dict[str, Any]:
    """The claims of ``Forwarded``, ``X-Forwarded-*`` and ``X-Real-IP``; absent: [] or None."""
    values = headers.get_all("forwarded") or []  # type: ignore[attr-defined]
    found = list(elements(values))
    addresses = [element["for"] for element in found if "for" in element]
    if not addresses:
        addresses = [
            item.strip()
            for value in headers.get_all("x-forwarded-for") or []  # type: ignore[attr-defined]
            for item in value.split(",")
            if item.strip()
        ]
    return {
        "for": addresses,
        "proto": _first(found, "proto") or headers.get("x-forwarded-proto"),
        "host": _first(found, "host") or headers.get("x-forwarded-host"),
        "realIp": headers.get("x-real-ip"),
    }


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


def _first(found: list[dict[str, str]], name: str) -> str | None:
    return next((element[name] for element in found if name in element), None)
