"""Ranges: what ``Range``, ``If-Range`` and ``If-None-Match`` ask of a representation.

Pure functions over header values and a representation's strong entity tag and size,
after RFC 9110: sections 14.1.2 (byte ranges), 13.1.5 (``If-Range``) and 13.1.2
(``If-None-Match``, compared weakly). A ``Range`` that is not one valid byte range is
ignored, as section 14.2 allows: a malformed one, another unit, and several ranges,
which echod answers with the whole representation rather than a multipart one.
"""

from __future__ import annotations

import re

from echod.http.problems import RangeNotSatisfiable

__all__ = ["byte_range", "if_range_holds", "none_match"]

# A byte range: first-last, first-, or -suffix. Nineteen digits count past any size.
_SPEC = re.compile(r"([0-9]{0,19})-([0-9]{0,19})")
_TAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"')


def byte_range(value: str, size: int) -> tuple[int, int] | None:
    """The one byte range ``value`` asks of ``size`` bytes, first and last included.

    None when the ``Range`` is to be ignored: not ``bytes``, malformed, or several ranges.

    Raises:
        RangeNotSatisfiable: the range starts at or past the end, or is a suffix of
            nothing (416, with ``Content-Range: bytes */size``).
    """
    unit, equals, specs = value.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    ranges = [spec.strip() for spec in specs.split(",") if spec.strip()]
    if len(ranges) != 1 or not (found := _SPEC.fullmatch(ranges[0])):
        return None
    first, last = found.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(value, size)
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # invalid (RFC 9110 section 14.1.1): ignored
    if start >= size:
        raise _unsatisfiable(value, size)
    return start, min(int(last), size - 1) if last else size - 1


def if_range_holds(value: str, tag: str) -> bool:
    """Whether ``If-Range: value`` lets a range of the representation tagged ``tag`` through.

    Only the same strong tag does: a weak tag never matches, and a date cannot, since
    the representation has no ``Last-Modified``.
    """
    return value.strip() == tag


def none_match(value: str | None, tag: str) -> bool:
    """Whether ``If-None-Match: value`` names ``tag`` (weak comparison), or is ``*``."""
    if value is None:
        return False
    if value.strip() == "*":
        return True
    return any(found.removeprefix("W/") == tag for found in _TAG.findall(value))


def _unsatisfiable(value: str, size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(f"Range {value[:60]!r} has no byte among the {size}", size)
