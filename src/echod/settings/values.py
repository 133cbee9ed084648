"""Values: the parsers of setting values. Each turns text into a checked value, or says why not.

A parser raises ``ValueError`` with a message saying what was expected; the settings
(:mod:`echod.settings.config`) add the flag or variable that carried the value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "boolean",
    "directory",
    "host",
    "integer",
    "origin",
    "readable_file",
    "seconds",
    "text",
]

# An origin as browsers send it (RFC 6454): scheme, host and an optional port, no path.
_ORIGIN = re.compile(
    r"(?P<scheme>https?)://(?P<authority>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?"
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def integer(low: int, high: int) -> Callable[[str], int]:
    """A parser of a whole number from ``low`` to ``high``."""

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
    """A parser of a number of seconds from ``low`` to ``high``."""

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
    """An address to listen on; an IPv6 address may come in brackets."""
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


def directory(raw: str) -> Path:
    """The path of a directory that exists and can be written to."""
    path = Path(raw)
    if not path.is_dir():
        raise ValueError("no such directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError("directory is not writable")
    return path


def boolean(raw: str) -> bool:
    """``1``, ``true``, ``yes`` or ``on``; ``0``, ``false``, ``no``, ``off`` or empty."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("not a boolean (expected 1 or 0, true or false, yes or no, on or off)")


def origin(raw: str) -> str:
    """``*``, or an origin such as ``https://app.example:8443``, in lower case."""
    value = raw.strip()
    if value == "*":
        return value
    if not _ORIGIN.fullmatch(value):
        raise ValueError(
            "not an origin (expected * or scheme://host[:port], such as https://app.example)"
        )
    return value.lower()


def text(raw: str) -> str:
    """Any text that is not empty, without the spaces around it (an issuer, an audience)."""
    value = raw.strip()
    if not value:
        raise ValueError("empty (expected some text)")
    return value
