"""Event log: echod's and granian's :mod:`logging` events, as JSON lines on stdout.

Events (start, stop, reloads, warnings) are formatted by
:class:`echod.telemetry.log_line.JsonFormatter` in the shape of every line, and written
through the process's one writer of stdout
(:func:`echod.telemetry.line_writer.stdout_writer`), as request lines are: a stalled
stdout drops them, counted, and never blocks the process.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from echod.settings.config import LogLevel
from echod.telemetry.line_writer import stdout_writer
from echod.telemetry.log_line import LEVELS, JsonFormatter

__all__ = ["LineHandler", "configure_logging"]

#: What granian says each time an embedded server starts, which is echod's way to run it:
#: no news to whoever reads the log.
_EMBEDDED_NOTICE = "Embedded server is experimental!"


class LineHandler(logging.Handler):
    """Writes each formatted record as one line through the process's writer of stdout."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Let every record through but granian's notice about its embedded servers."""
        return record.msg != _EMBEDDED_NOTICE and super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        """Hand the record's line over; it is written whole or dropped."""
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)
            return
        stdout_writer().write(line.encode() + b"\n")


def configure_logging(level: LogLevel, budget: int | None = None) -> dict[str, Any]:
    """Send echod's and granian's :mod:`logging` events to stdout as JSON lines.

    granian's own messages show from ``warning``, or from ``debug`` when echod logs at
    ``debug``. ``budget`` bounds the bytes of lines that may wait for a slow stdout
    (``--log-buffer-bytes``). Returns the ``dictConfig`` applied, which granian applies
    again as it starts a server.
    """
    stdout_writer(budget)
    granian_level = logging.DEBUG if level is LogLevel.DEBUG else logging.WARNING
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stdout": {"()": LineHandler, "formatter": "json"}},
        "loggers": {
            "echod": {"handlers": ["stdout"], "level": LEVELS[level], "propagate": False},
            "_granian": {"handlers": ["stdout"], "level": granian_level, "propagate": False},
            "granian.access": {"handlers": [], "level": logging.CRITICAL, "propagate": False},
        },
    }
    logging.config.dictConfig(config)
    return config
