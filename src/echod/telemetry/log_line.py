"""Lines: the shape every log line shares, and the cut that keeps it under PIPE_BUF.

Every line echod writes is one JSON object of at most :data:`MAX_LINE_BYTES` bytes,
newline included, so that lines from several processes never interleave on a shared
pipe (POSIX makes writes of up to ``PIPE_BUF`` bytes atomic). A field too long to fit
(a 12 KB path, a long traceback) is cut, and ends with a marker saying how much was cut.
Times are RFC 3339 in UTC with milliseconds.
"""

from __future__ import annotations

import logging
import select
import time
from typing import Any

import msgspec

from echod.settings.config import LogLevel

__all__ = [
    "CUT_MARKER",
    "EVENT_FIELDS",
    "LEVELS",
    "MAX_LINE_BYTES",
    "JsonFormatter",
    "Rfc3339Clock",
    "cut",
    "event_line",
    "fit_line",
]

#: The :mod:`logging` level of each of echod's log levels.
LEVELS = {
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
}
#: The longest line written, newline included: a write this small is atomic on a pipe.
MAX_LINE_BYTES = select.PIPE_BUF
#: What ends a field that was cut to fit its line; ``{}`` is the number of characters cut.
CUT_MARKER = "...[{} more]"

_encode = msgspec.json.Encoder().encode
# The fields that are always short: never cut.
_SHORT_FIELDS = frozenset(
    {"time", "level", "logger", "method", "status", "duration_ms", "requestId"}
)


def fit_line(fields: dict[str, Any]) -> bytes:
    """Return ``fields`` as one JSON line of at most :data:`MAX_LINE_BYTES` bytes.

    String fields that make the line too long are cut, the longest the most, each
    ending with :data:`CUT_MARKER`. The short fields (time, level, status...) are kept.
    """
    line = _encode(fields)
    if len(line) < MAX_LINE_BYTES:
        return line + b"\n"
    long = sorted(
        (
            name
            for name, value in fields.items()
            if type(value) is str and name not in _SHORT_FIELDS
        ),
        key=lambda name: len(_encode(fields[name])),
    )
    kept = {name: value for name, value in fields.items() if name not in long}
    # Each long field costs its name, its quotes and separators besides its value.
    room = MAX_LINE_BYTES - 1 - len(_encode(kept)) - sum(len(name) + 6 for name in long)
    cut = dict(fields)
    for left, name in enumerate(long):
        share = room // (len(long) - left)
        cut[name] = _cut(fields[name], share)
        room -= len(_encode(cut[name])) - 2
    return _encode(cut) + b"\n"


def cut(value: str, limit: int) -> str:
    """``value``, cut to at most ``limit`` characters and marked when it was longer."""
    if len(value) <= limit:
        return value
    kept = max(limit - len(CUT_MARKER.format(len(value))), 0)
    return value[:kept] + CUT_MARKER.format(len(value) - kept)


def _cut(value: str, room: int) -> str:
    """``value``, cut so that it takes at most ``room`` bytes as a JSON string's content."""
    if len(_encode(value)) - 2 <= room:
        return value
    low, high = 0, len(value)  # the longest kept prefix whose cut form fits
    while low < high:
        keep = (low + high + 1) // 2
        if len(_encode(value[:keep] + CUT_MARKER.format(len(value) - keep))) - 2 <= room:
            low = keep
        else:
            high = keep - 1
    return value[:low] + CUT_MARKER.format(len(value) - low)


class Rfc3339Clock:
    """Formats times as RFC 3339 UTC with milliseconds, formatting each millisecond once."""

    __slots__ = ("_formatted", "_millisecond", "_prefix", "_second")

    def __init__(self) -> None:
        """Start with nothing formatted."""
        self._second = -1
        self._prefix = ""
        self._millisecond = -1
        self._formatted = ""

    def format(self, now: float) -> str:
        """Return ``now`` (seconds since the epoch) as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
        millisecond = int(now * 1000)
        if millisecond != self._millisecond:
            second = millisecond // 1000
            if second != self._second:
                self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
                self._second = second
            self._formatted = f"{self._prefix}.{millisecond % 1000:03d}Z"
            self._millisecond = millisecond
        return self._formatted


#: The fields every event line (start, stop, warnings, ready) begins with, in order.
EVENT_FIELDS = ("time", "level", "message", "logger")


def event_line(
    message: str,
    logger: str,
    fields: dict[str, Any],
    *,
    level: str = "info",
    when: float | None = None,
    clock: Rfc3339Clock | None = None,
) -> bytes:
    """One event as a JSON line: :data:`EVENT_FIELDS`, then ``fields``, cut to fit."""
    stamp = (clock or Rfc3339Clock()).format(time.time() if when is None else when)
    return fit_line(dict(zip(EVENT_FIELDS, (stamp, level, message, logger), strict=True)) | fields)


class JsonFormatter(logging.Formatter):
    """Formats :mod:`logging` records as echod's event lines."""

    def __init__(self) -> None:
        """Format with echod's clock; no format string is used."""
        super().__init__()
        self._clock = Rfc3339Clock()

    def format(self, record: logging.LogRecord) -> str:
        """Return ``record`` as one JSON line (without the newline)."""
        fields = dict(getattr(record, "fields", {}))
        if record.exc_info:
            fields["error"] = repr(record.exc_info[1])
            fields["traceback"] = self.formatException(record.exc_info)
        line = event_line(
            record.getMessage(),
            record.name,
            fields,
            level=record.levelname.lower(),
            when=record.created,
            clock=self._clock,
        )
        return line[:-1].decode()
