"""Access log: one JSON line per answered request, rendered without :mod:`logging`.

Request lines skip :mod:`logging`, which is too slow per request: they are rendered from
:data:`ACCESS_FIELDS` in the shape :mod:`echod.telemetry.log_line` gives every line, and
handed to the process's :class:`echod.telemetry.line_writer.LineWriter`, which writes
them in whole lines. Start, stop and warning events go through :mod:`logging`
(:mod:`echod.telemetry.event_log`), in the same shape and through the same writer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from echod.routes import KNOWN_METHODS
from echod.telemetry.log_line import LEVELS, MAX_LINE_BYTES, Rfc3339Clock, cut, fit_line

if TYPE_CHECKING:
    import asyncio

    from echod.settings.config import LogLevel
    from echod.telemetry.line_writer import LineWriter
    from echod.telemetry.records import RequestRecord

__all__ = [
    "ACCESS_FIELDS",
    "ERROR_FIELDS",
    "MAX_DETAIL_CHARS",
    "ORIGINAL_FIELDS",
    "PROBLEM_FIELDS",
    "STREAM_FIELDS",
    "WEBSOCKET_FIELDS",
    "AccessLog",
]

#: The fields of a request line, in order. Both ways of writing a line derive from it.
ACCESS_FIELDS = (
    "time",
    "level",
    "message",
    "method",
    "path",
    "status",
    "duration_ms",
    "requestId",
    "userId",
    "authScheme",
    "remote",
)
#: The fields a line of a 4xx or 5xx answer adds: what was wrong.
PROBLEM_FIELDS = ("detail",)
#: The fields a line of a 500 adds: the exception and its traceback.
ERROR_FIELDS = ("error", "traceback")
#: The field the line of an event stream adds: how many events it sent.
STREAM_FIELDS = ("events",)
#: The fields the line of a WebSocket (status 101, written when it closes) adds.
WEBSOCKET_FIELDS = ("messagesIn", "messagesOut", "bytesIn", "bytesOut", "closedBy")
#: The fields the line of a forward-auth check adds: the request the proxy asked about.
ORIGINAL_FIELDS = ("originalMethod", "originalUri", "originalHost", "originalProto")
#: The longest ``detail`` written, in characters; a longer one is cut and marked.
MAX_DETAIL_CHARS = 512

_encode = msgspec.json.Encoder().encode
_wall = time.time
# How the common path writes each field: an f-string fragment over the record ``r``, the
# time ``t`` and the ``level``, with the client's ``path``, the ``user`` and the
# ``detail`` already escaped as JSON strings. The other strings are plain by
# construction: a known method, a checked or generated request id, the server's own
# text of the client's address, and the scheme ("basic" or "bearer").
_COMMON = {
    "time": '"{t}"',
    "level": '"{level}"',
    "message": '"{r.method} {path[1:-1]} HTTP/{r.http_version}"',
    "method": '"{r.method}"',
    "path": "{path}",
    "status": "{r.status}",
    # The answer's X-Response-Time, unless the duration moved on since (a stream's end).
    "duration_ms": "{r.duration_text if r.duration_ms == r.stamped_ms"
    ' else format(r.duration_ms, ".3f")}',
    "requestId": '"{r.request_id}"',
    "userId": "{user}",
    "authScheme": '"{r.scheme}"',
    "remote": '"{r.remote}"',
    "detail": "{detail}",
}
_CommonLine = Callable[["RequestRecord", str, str, str, str, str], bytes]


def _compile_common_line(fields: tuple[str, ...], *, anonymous: bool = False) -> _CommonLine:
    """Compile the common path's writer of ``fields``: one f-string, Python's fastest join.

    An ``anonymous`` writer, for a record without a verified user, writes its
    ``authScheme`` as null. This is how dataclasses and namedtuple make their methods:
    source text built from the field list, compiled once at import.
    """
    common = _COMMON | ({"authScheme": "null"} if anonymous else {})
    body = ",".join(f'"{name}":{common[name]}' for name in fields)
    source = (
        f"def common_line(r, t, level, path, user, detail):\n"
        f"    return f'{{{{{body}}}}}\\n'.encode()"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "<echod access line>", "exec"), namespace)  # noqa: S102 - our own text
    line: _CommonLine = namespace["common_line"]
    return line


_common_line = _compile_common_line(ACCESS_FIELDS)
_common_problem_line = _compile_common_line(ACCESS_FIELDS + PROBLEM_FIELDS)
# Without a verified user, authScheme is null whatever the record's scheme says.
_anonymous_line = _compile_common_line(ACCESS_FIELDS, anonymous=True)
_anonymous_problem_line = _compile_common_line(ACCESS_FIELDS + PROBLEM_FIELDS, anonymous=True)
# Methods written into a line as they are; any other is escaped.
_PLAIN_METHODS = frozenset(KNOWN_METHODS)
# Paths and users whose escaped form is remembered: a bounded table of short values.
_ESCAPED_REMEMBERED = 256
_SHORT = 64


def _detail(record: RequestRecord) -> str:
    """The record's detail, at most :data:`MAX_DETAIL_CHARS` long."""
    return cut(record.detail or "", MAX_DETAIL_CHARS)


class AccessLog:
    """The per-request log: one JSON line per answered request."""

    def __init__(self, level: LogLevel, writer: LineWriter) -> None:
        """Write lines at ``level`` and above through ``writer``."""
        self._info = LEVELS[level] <= logging.INFO
        self._warning = LEVELS[level] <= logging.WARNING
        self._writer = writer
        self.write = self._writer.write
        self._clock = Rfc3339Clock()
        # JSON strings of values that repeat (user names, paths), escaped once.
        self._escaped: dict[str, str] = {}

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Write buffered lines from ``loop`` soon after they arrive (or at once, if None)."""
        self._writer.bind(loop)

    def flush(self, timeout: float = 1.0) -> bool:
        """Write every buffered line now, waiting ``timeout`` s at most; whether all were."""
        return self._writer.flush(timeout)

    def request(self, record: RequestRecord) -> None:
        """Log one answered request; the level follows the status."""
        status = record.status
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
        path, user = record.path, record.user
        if (
            record.error is None
            and record.websocket is None
            and record.events is None
            and record.original is None
            and record.method in _PLAIN_METHODS
        ):
            escaped = self._escaped
            quoted_path = escaped.get(path) or self._escape(path)
            if user is None:
                quoted_user, plain, problem = "null", _anonymous_line, _anonymous_problem_line
            else:
                quoted_user = escaped.get(user) or self._escape(user)
                plain, problem = _common_line, _common_problem_line
            if status < 400:  # noqa: PLR2004
                line = plain(
                    record, self._clock.format(_wall()), level, quoted_path, quoted_user, ""
                )
            else:
                detail = _detail(record)
                line = problem(
                    record,
                    self._clock.format(_wall()),
                    level,
                    quoted_path,
                    quoted_user,
                    escaped.get(detail) or self._escape(detail),
                )
            if len(line) <= MAX_LINE_BYTES:
                self.write(line)
                return
        # The long way, for what is rare: an error's traceback, an unusual method, a value
        # long enough to need cutting.
        self.write(self._full_line(record, level))

    def _full_line(self, record: RequestRecord, level: str) -> bytes:
        """The line of ``record`` made through the encoder, cut to fit if it must be."""
        values = {
            "time": self._clock.format(_wall()),
            "level": level,
            "message": f"{record.method} {record.path} HTTP/{record.http_version}",
            "method": record.method,
            "path": record.path,
            "status": record.status,
            "duration_ms": round(record.duration_ms, 3),
            "requestId": record.request_id,
            "userId": record.user,
            "authScheme": None if record.user is None else record.scheme,
            "remote": record.remote,
        }
        fields: tuple[str, ...] = ACCESS_FIELDS
        if record.status >= 400:  # noqa: PLR2004
            values["detail"] = _detail(record)
            fields += PROBLEM_FIELDS
        if record.error is not None:
            values["error"], values["traceback"] = record.error
            fields += ERROR_FIELDS
        if record.events is not None:
            values["events"] = record.events
            fields += STREAM_FIELDS
        if (original := record.original) is not None:
            values |= {
                "originalMethod": original.method,
                "originalUri": original.uri,
                "originalHost": original.host,
                "originalProto": original.proto,
            }
            fields += ORIGINAL_FIELDS
        if (traffic := record.websocket) is not None:
            values |= {
                "messagesIn": traffic.messages_in,
                "messagesOut": traffic.messages_out,
                "bytesIn": traffic.bytes_in,
                "bytesOut": traffic.bytes_out,
                "closedBy": traffic.closed_by,
            }
            fields += WEBSOCKET_FIELDS
        return fit_line({name: values[name] for name in fields})

    def _escape(self, value: str) -> str:
        quoted: str = _encode(value).decode()
        if len(self._escaped) < _ESCAPED_REMEMBERED and len(value) <= _SHORT:
            self._escaped[value] = quoted
        return quoted
