"""Controls: what a request may ask of its answer: a status, a delay, a size, a pace.

A control is a query parameter, or the same control as an ``X-Echod-*`` header, named
after it (``delay_ms`` is ``X-Echod-Delay-Ms``); the query wins, even when its value is
bad, since some ingresses pass only a URL. Numbers are plain decimal digits within
their bounds. Anything else (a sign, a space, a fraction, an exponent, too many digits,
a control given twice that is not repeatable) is a 400 that names the control.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from echod.http.problems import BadRequest

if TYPE_CHECKING:
    from collections.abc import Mapping

    from granian.rsgi import Headers, Scope  # type: ignore[attr-defined]

__all__ = ["Bounds", "Controls", "control", "delay_ms", "header_of", "query_args"]

# Nine digits are enough for every bound here, and keep int() cheap on hostile input.
_DIGITS = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class Bounds:
    """The inclusive range of one control's value."""

    low: int
    high: int


def query_args(query: str) -> dict[str, list[str]]:
    """The query's parameters, each with its values in order, decoded as an HTML form is.

    ``+`` is a space and ``?flag`` is ``{"flag": [""]}``.

    Raises:
        BadRequest: the query is not UTF-8 once percent-decoded.
    """
    args: dict[str, list[str]] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("the query string is not UTF-8 once percent-decoded") from None
    for name, value in pairs:
        args.setdefault(name, []).append(value)
    return args


def header_of(name: str) -> str:
    """The header that carries control ``name``: ``x-echod-delay-ms`` for ``delay_ms``."""
    return "x-echod-" + name.replace("_", "-")


def _given(
    args: Mapping[str, list[str]], name: str, headers: Headers | None, header: str
) -> tuple[list[str], str] | None:
    """The values of control ``name`` and where they came from: the query, else ``header``."""
    values = args.get(name)
    if values is not None:
        return values, name
    if headers is not None and header:
        found: list[str] = headers.get_all(header)  # type: ignore[attr-defined]
        if found:
            return found, header
    return None


def _once(values: list[str], source: str) -> str:
    if len(values) > 1:
        raise BadRequest(f"{source} is given {len(values)} times; give it once")
    return values[0]


def number(raw: str, source: str, bounds: Bounds) -> int:
    """``raw`` as a whole number within ``bounds``.

    Raises:
        BadRequest: it is not plain digits within ``bounds``; the detail names ``source``.
    """
    if not _DIGITS.fullmatch(raw) or not bounds.low <= int(raw) <= bounds.high:
        raise BadRequest(
            f"{source}={raw[:40]!r} is not a whole number from {bounds.low} to {bounds.high}"
        )
    return int(raw)


def control(
    args: Mapping[str, list[str]],
    name: str,
    bounds: Bounds,
    headers: Headers | None = None,
    header: str = "",
) -> int | None:
    """The value of control ``name`` from the query, or else from ``header``, or None.

    Raises:
        BadRequest: it is given twice, or is not plain digits within ``bounds``.
    """
    given = _given(args, name, headers, header)
    if given is None:
        return None
    values, source = given
    return number(_once(values, source), source, bounds)


class Controls:
    """One request's controls: each from the query, or else from its ``X-Echod-*`` header."""

    __slots__ = ("_headers", "args")

    def __init__(self, scope: Scope) -> None:
        """Read the controls of the request of ``scope``.

        Raises:
            BadRequest: the query is not UTF-8 once percent-decoded.
        """
        #: The query's parameters, as :func:`query_args` decodes them.
        self.args = query_args(scope.query_string)
        self._headers = scope.headers

    def integer(self, name: str, bounds: Bounds) -> int | None:
        """Control ``name`` as a whole number within ``bounds``, or None when not given.

        Raises:
            BadRequest: it is given twice, or is not plain digits within ``bounds``.
        """
        return control(self.args, name, bounds, self._headers, header_of(name))

    def text(self, name: str) -> tuple[str, str] | None:
        """Control ``name`` as given, and its source (the parameter or the header), or None.

        Raises:
            BadRequest: it is given twice.
        """
        given = _given(self.args, name, self._headers, header_of(name))
        if given is None:
            return None
        values, source = given
        return _once(values, source), source

    def texts(self, name: str) -> tuple[list[str], str]:
        """Every value of the repeatable control ``name``, and their source.

        The query's values, if it has any; else every value of the header.
        """
        given = _given(self.args, name, self._headers, header_of(name))
        return ([], name) if given is None else given


def delay_ms(max_delay: float) -> Bounds:
    """The bounds of a delay in milliseconds: from 0 to ``--max-delay`` seconds."""
    return Bounds(0, round(max_delay * 1000))
