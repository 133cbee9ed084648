"""Values: the parsers of setting values, from the text of a flag or variable.

Each takes the raw text and returns the typed value, or raises ``ValueError`` saying
what it expected; :mod:`echod.config` adds the flag or variable that carried it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["host", "integer", "readable_file", "seconds"]


def integer(low: int, high: int) -> Callable[[str], int]:
    """A parser of whole numbers from ``low`` to ``high``."""

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip(), 10)
        except ValueError:
            raise ValueError(f"not an integer (expected {low}-{high})") from None
        if not low <= value <= high:
            raise ValueError(f"out of range (expected {low}-{high})")
        return value

    return parse


def seconds(low: float, high: float) -> Callable[[str], float]:
    """A parser of seconds from ``low`` to ``high``, fractions allowed."""

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"not a number of seconds (expected {low:g}-{high:g})") from None
        if not low <= value <= high:  # also rejects nan
            raise ValueError(f"out of range (expected {low:g}-{high:g} seconds)")
        return value

    return parse


def host(raw: str) -> str:
    """An address to listen on; brackets around an IPv6 address are dropped."""
    value = raw.strip().removeprefix("[").removesuffix("]")
    if not value:
        raise ValueError("empty host")
    return value


def readable_file(raw: str) -> Path:
    """The path of a file that exists and can be read."""
    path = Path(raw)
    if not path.is_file():
        raise ValueError("no such file")
    if not os.access(path, os.R_OK):
        raise ValueError("file is not readable")
    return path
