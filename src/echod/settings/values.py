"""Values: the parsers of setting values. Each turns text into a checked value, or says why not.

A parser raises ``ValueError`` with a message saying what was expected; the settings
(:mod:`echod.settings.config`) add the flag or variable that carried the value.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "StateUrl",
    "boolean",
    "directory",
    "hide_password",
    "host",
    "integer",
    "origin",
    "readable_file",
    "seconds",
    "state_prefix",
    "state_url",
    "text",
]

# An origin as browsers send it (RFC 6454): scheme, host and an optional port, no path.
_ORIGIN = re.compile(
    r"(?P<scheme>https?)://(?P<authority>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?"
)
_TRUE = {"1", "true", "yes", "on"}
# A key prefix in Redis: the characters of a scenario's key, so that keys stay readable.
_PREFIX = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The password of a URL's user information, to hide wherever the URL is shown.
_USERINFO_PASSWORD = re.compile(r"(?<=://)([^@/]*?):[^@/]*@")
_REDIS_SCHEMES = ("redis", "rediss")
_REDIS_PORT = 6379
_MAX_DB = 1_000_000
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


@dataclass(frozen=True, slots=True)
class StateUrl:
    """Where the scenarios' state lives: a Redis or Valkey server (``--state``).

    It never holds a password: that comes from ``ECHOD_STATE_PASSWORD``.
    """

    #: Whether the connection is TLS (``rediss://``).
    tls: bool
    host: str
    port: int
    db: int
    #: The ACL user, or None for the default user.
    username: str | None = None

    def __str__(self) -> str:
        """The URL as echod shows it in its logs and problems: no password in it."""
        user = f"{self.username}@" if self.username else ""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'rediss' if self.tls else 'redis'}://{user}{shown}:{self.port}/{self.db}"


def hide_password(raw: str) -> str:
    """``raw`` with the password of a URL's user information replaced by ``***``."""
    return _USERINFO_PASSWORD.sub(r"\1:***@", raw)


def state_url(raw: str) -> StateUrl:
    """``redis://host[:port][/db]`` or ``rediss://...``, with an optional ACL user.

    The default port is 6379 and the default database 0. A password in the URL is
    refused, so that it never shows in a process list or a log: give it in
    ``ECHOD_STATE_PASSWORD``.
    """
    value = raw.strip()
    expected = "expected redis://host[:port][/db] or rediss://host[:port][/db]"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError(f"not a Redis URL ({expected})") from None
    if parts.scheme not in _REDIS_SCHEMES or not parts.hostname:
        raise ValueError(f"not a Redis URL ({expected})")
    if parts.password is not None:
        raise ValueError(
            "the URL holds a password: give it in ECHOD_STATE_PASSWORD instead, so that it "
            "never shows in a process list or a log"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"a Redis URL takes no query or fragment ({expected})")
    db_text = parts.path.removeprefix("/")
    if db_text and (not db_text.isdigit() or not db_text.isascii() or int(db_text) > _MAX_DB):
        raise ValueError(f"the database {db_text[:20]!r} is not a number ({expected})")
    return StateUrl(
        tls=parts.scheme == "rediss",
        host=parts.hostname,
        port=_REDIS_PORT if port is None else port,
        db=int(db_text) if db_text else 0,
        username=unquote(parts.username) if parts.username else None,
    )


def state_prefix(raw: str) -> str:
    """A prefix of Redis keys: 1 to 64 characters of ``[A-Za-z0-9._:-]``."""
    if not _PREFIX.fullmatch(raw):
        raise ValueError("not a key prefix (expected 1 to 64 characters of [A-Za-z0-9._:-])")
    return raw


def text(raw: str) -> str:
    """Any text that is not empty, without the spaces around it (an issuer, an audience)."""
    value = raw.strip()
    if not value:
        raise ValueError("empty (expected some text)")
    return value
