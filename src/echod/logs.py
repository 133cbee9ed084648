"""Logs: JSON lines on stdout, one per request, plus start, stop and warning events.

Request lines skip :mod:`logging` (too slow per request): they are rendered with
msgspec and buffered, then written in whole lines of at most ``PIPE_BUF`` bytes, so
that lines from several worker processes never interleave. The buffer is written when
it fills, a moment after the first line enters it, and on shutdown.
Other events go through :mod:`logging` with :class:`JsonFormatter`, in the same shape.
"""

from __future__ import annotations

import logging
import logging.config
import os
import select
import time
import traceback
from typing import TYPE_CHECKING, Any

import msgspec

from echod.config import LogLevel

if TYPE_CHECKING:
    import asyncio

__all__ = ["FLUSH_DELAY", "AccessLog", "JsonFormatter", "Rfc3339Clock", "configure_logging"]

#: Seconds a request line may wait in the buffer before it is written.
FLUSH_DELAY = 0.05
_LINES_PER_WRITE = select.PIPE_BUF  # writes this small are atomic on a pipe
_LEVELS = {
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
}
_encode = msgspec.json.Encoder().encode
# Methods written into a line as they are; any other is escaped.
_PLAIN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
# Paths and users whose escaped form is remembered: a bounded table of short values.
_ESCAPED_REMEMBERED = 256
_SHORT = 64


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


class AccessLog:
    """The per-request log: one JSON line per answered request."""

    def __init__(self, level: LogLevel, fd: int = 1) -> None:
        """Write lines at ``level`` and above to the file descriptor ``fd``."""
        self._info = _LEVELS[level] <= logging.INFO
        self._warning = _LEVELS[level] <= logging.WARNING
        self._fd = fd
        self._clock = Rfc3339Clock()
        self._pending: list[bytes] = []
        self._size = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        # JSON strings of values that repeat (user names, paths), escaped once.
        self._escaped: dict[str, str] = {}

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Write buffered lines from ``loop`` soon after they arrive (or at once, if None)."""
        self._loop = loop

    def request(
        self,
        method: str,
        path: str,
        http_version: str,
        status: int,
        duration_ms: float,
        request_id: str,
        user: str | None,
        remote: str,
        error: BaseException | None = None,
    ) -> None:
        """Log one answered request; the level follows the status.

        ``request_id`` must be safe to write as it is, as :class:`echod.observe.RequestIds`
        makes it, and ``remote`` is the server's ``host:port`` text of the client.
        """
        if status < 400:  # noqa: PLR2004
            if not self._info:
                return
            level = "info"
        elif status < 500:  # noqa: PLR2004
            if not self._warning:
                return
            level = "warning"
        else:
            level = "error"
        if error is not None or method not in _PLAIN_METHODS:
            # Rare lines (an error's traceback, an unusual method) go through the encoder.
            record: dict[str, Any] = {
                "time": self._clock.format(time.time()),
                "level": level,
                "message": f"{method} {path} HTTP/{http_version}",
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(duration_ms, 3),
                "requestId": request_id,
                "userId": user,
                "remote": remote,
            }
            if error is not None:
                record["error"] = repr(error)
                record["traceback"] = "".join(traceback.format_exception(error))
            self.write(_encode(record) + b"\n")
            return
        # The fields the client controls (path, user) are escaped as JSON strings; the
        # others are plain by construction: a known method, a checked or generated id,
        # the server's own address text, the status and the HTTP version.
        escaped = self._escaped
        quoted_path = escaped.get(path) or self._escape(path)
        quoted_user = "null" if user is None else escaped.get(user) or self._escape(user)
        self.write(
            f'{{"time":"{self._clock.format(time.time())}","level":"{level}",'
            f'"message":"{method} {quoted_path[1:-1]} HTTP/{http_version}",'
            f'"method":"{method}","path":{quoted_path},"status":{status},'
            f'"duration_ms":{duration_ms:.3f},"requestId":"{request_id}",'
            f'"userId":{quoted_user},"remote":"{remote}"}}\n'.encode()
        )

    def _escape(self, value: str) -> str:
        quoted: str = _encode(value).decode()
        if len(self._escaped) < _ESCAPED_REMEMBERED and len(value) <= _SHORT:
            self._escaped[value] = quoted
        return quoted

    def write(self, line: bytes) -> None:
        """Buffer one whole line."""
        if self._size + len(line) > _LINES_PER_WRITE:
            self.flush()
        self._pending.append(line)
        self._size += len(line)
        if self._loop is None:
            self.flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Write every buffered line."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        data = memoryview(b"".join(self._pending))
        self._pending.clear()
        self._size = 0
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError:
            return  # stdout is gone; there is nowhere left to say so


class JsonFormatter(logging.Formatter):
    """Formats :mod:`logging` records as echod's JSON lines."""

    def __init__(self) -> None:
        """Format with echod's clock; no format string is used."""
        super().__init__()
        self._clock = Rfc3339Clock()

    def format(self, record: logging.LogRecord) -> str:
        """Return ``record`` as one JSON line (without the newline)."""
        line: dict[str, Any] = {
            "time": self._clock.format(record.created),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
            "logger": record.name,
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["error"] = repr(record.exc_info[1])
            line["traceback"] = self.formatException(record.exc_info)
        return _encode(line).decode()


def configure_logging(level: LogLevel) -> dict[str, Any]:
    """Send echod's and granian's :mod:`logging` events to stdout as JSON lines.

    granian's own messages (workers starting, stopping, dying) show from ``warning``,
    or from ``debug`` when echod logs at ``debug``. Returns the ``dictConfig`` applied,
    which granian applies again in each process it starts.
    """
    granian_level = logging.DEBUG if level is LogLevel.DEBUG else logging.WARNING
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "echod": {"handlers": ["stdout"], "level": _LEVELS[level], "propagate": False},
            "_granian": {"handlers": ["stdout"], "level": granian_level, "propagate": False},
            "granian.access": {"handlers": [], "level": logging.CRITICAL, "propagate": False},
        },
    }
    logging.config.dictConfig(config)
    return config
