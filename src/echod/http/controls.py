"""Controls: what a request may ask of its answer: a status, a delay, a stream's pace.

A control is a query parameter, or for ``/api/inspect`` also a header (``X-Echod-Status``,
``X-Echod-Delay-Ms``); the query wins, even when its value is bad, since some ingresses
pass only a URL. Values are plain decimal digits within their bounds. Anything else (a
sign, a space, a fraction, an exponent, too many digits, the same parameter twice) is a
400 that names the parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from echod.http.problems import BadRequest

if TYPE_CHECKING:
    from collections.abc import Mapping

    from granian.rsgi import Headers  # type: ignore[attr-defined]

__all__ = ["Bounds", "control", "delay_ms", "query_args"]

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
    values = args.get(name)
    source = name
    if values is None and headers is not None and header:
        values = headers.get_all(header) or None  # type: ignore[attr-defined]
        source = header
    if values is None:
        return None
    if len(values) > 1:
        raise BadRequest(f"{source} is given {len(values)} times; give it once")
    raw = values[0]
    if not _DIGITS.fullmatch(raw) or not bounds.low <= int(raw) <= bounds.high:
        raise BadRequest(
            f"{source}={raw[:40]!r} is not a whole number from {bounds.low} to {bounds.high}"
        )
    return int(raw)


def delay_ms(max_delay: float) -> Bounds:
    """The bounds of a delay in milliseconds: from 0 to ``--max-delay`` seconds."""
    return Bounds(0, round(max_delay * 1000))
