"""Logs: the request line, its level, buffering, and the JSON formatter."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import sys
from typing import Any

import pytest

from echod.settings.config import LogLevel
from echod.telemetry.access_log import (
    ACCESS_FIELDS,
    MAX_DETAIL_CHARS,
    ORIGINAL_FIELDS,
    PROBLEM_FIELDS,
    WEBSOCKET_FIELDS,
    AccessLog,
)
from echod.telemetry.line_writer import FLUSH_DELAY, LineWriter
from echod.telemetry.log_line import JsonFormatter, Rfc3339Clock
from echod.telemetry.metric_layout import Layout
from echod.telemetry.records import Original, RequestRecord, Traffic, failure
from tests.support.harness import QuietLoop


def read_bytes(fd: int) -> bytes:
    """What is written to the pipe ``fd`` until it stays quiet for a tenth of a second.

    Lines are written by the writer's thread, a moment after they are handed over.
    """
    data = b""
    while select.select([fd], [], [], 0.1)[0]:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        data += chunk
    return data


def read_lines(fd: int) -> list[dict[str, Any]]:
    """Read what is written to the pipe ``fd`` as JSON lines."""
    return [json.loads(line) for line in read_bytes(fd).decode().splitlines()]


@pytest.fixture
def pipe() -> Any:
    """A pipe whose write end stands in for stdout."""
    read, write = os.pipe()
    yield read, write
    os.close(read)
    os.close(write)


def record(status: int = 200, **fields: Any) -> RequestRecord:
    """A typical request's record with ``status``; ``fields`` change the others."""
    typical: dict[str, Any] = {
        "method": "POST",
        "path": "/api/echo",
        "tally": Layout().tally("/api/echo"),
        "http_version": "1.1",
        "duration_ms": 0.12345,
        "request_id": "rid-1",
        "user": "alice",
        "scheme": "basic",
        "remote": "127.0.0.1:5",
        "started": 0.0,
    }
    return RequestRecord(status=status, **(typical | fields))


def log_one(log: AccessLog, status: int, error: BaseException | None = None) -> None:
    """Log a typical request with ``status``."""
    log.request(record(status, error=None if error is None else failure(error)))


class TestRfc3339Clock:
    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            (0.0, "1970-01-01T00:00:00.000Z"),
            (1_700_000_000.5, "2023-11-14T22:13:20.500Z"),
            (1_700_000_000.9999, "2023-11-14T22:13:20.999Z"),
            (1_700_000_001.0, "2023-11-14T22:13:21.000Z"),
        ],
        ids=["epoch", "half", "rounds-down", "next-second"],
    )
    def test_formats_utc_with_milliseconds(self, now: float, expected: str) -> None:
        """RFC 3339, UTC, three decimals, each second formatted afresh when it changes."""
        clock = Rfc3339Clock()
        clock.format(1.0)
        assert clock.format(now) == expected


class TestAccessLog:
    def test_line_has_every_field(self, pipe: tuple[int, int]) -> None:
        """One JSON object with the documented fields, in order."""
        log = AccessLog(LogLevel.INFO, LineWriter(pipe[1]))
        log_one(log, 200)
        [line] = read_lines(pipe[0])
        assert list(line) == [
            "time", "level", "message", "method", "path", "status", "duration_ms",
            "requestId", "userId", "authScheme", "remote",
        ]  # fmt: skip
        assert line["level"] == "info"
        assert line["message"] == "POST /api/echo HTTP/1.1"
        assert line["status"] == 200
        assert line["duration_ms"] == 0.123
        assert (line["requestId"], line["userId"], line["remote"]) == (
            "rid-1",
            "alice",
            "127.0.0.1:5",
        )
        assert line["time"].endswith("Z")

    @pytest.mark.parametrize(
        ("status", "level"),
        [
            (200, "info"),
            (399, "info"),
            (400, "warning"),
            (404, "warning"),
            (499, "warning"),
            (500, "error"),
            (503, "error"),
        ],
        ids=str,
    )
    def test_level_follows_the_status(self, pipe: tuple[int, int], status: int, level: str) -> None:
        """info below 400, warning for 4xx, error for 5xx."""
        log_one(AccessLog(LogLevel.DEBUG, LineWriter(pipe[1])), status)
        assert read_lines(pipe[0])[0]["level"] == level

    @pytest.mark.parametrize(
        ("minimum", "logged"),
        [
            (LogLevel.DEBUG, [200, 404, 500]),
            (LogLevel.INFO, [200, 404, 500]),
            (LogLevel.WARNING, [404, 500]),
            (LogLevel.ERROR, [500]),
        ],
        ids=str,
    )
    def test_lines_below_the_level_are_dropped(
        self, pipe: tuple[int, int], minimum: LogLevel, logged: list[int]
    ) -> None:
        """--log-level filters request lines by the level their status gives them."""
        log = AccessLog(minimum, LineWriter(pipe[1]))
        for status in (200, 404, 500):
            log_one(log, status)
        assert [line["status"] for line in read_lines(pipe[0])] == logged

    def test_errors_carry_their_traceback(self, pipe: tuple[int, int]) -> None:
        """A 5xx line says what failed and where."""
        try:
            raise KeyError("boom")
        except KeyError as error:
            log_one(AccessLog(LogLevel.INFO, LineWriter(pipe[1])), 500, error)
        [line] = read_lines(pipe[0])
        assert line["error"] == "KeyError('boom')"
        assert "Traceback (most recent call last)" in line["traceback"]
        assert 'raise KeyError("boom")' in line["traceback"]

    @pytest.mark.parametrize(
        ("fields", "names"),
        [
            ({}, ACCESS_FIELDS),
            ({"user": None}, ACCESS_FIELDS),
            ({"scheme": "bearer"}, ACCESS_FIELDS),
            ({"path": '/q"\\\n\x01é'}, ACCESS_FIELDS),
            ({"status": 404, "detail": 'no route "/x"\n'}, ACCESS_FIELDS + PROBLEM_FIELDS),
            (
                {"status": 503, "duration_ms": 1234.5678, "detail": "busy"},
                ACCESS_FIELDS + PROBLEM_FIELDS,
            ),
        ],
        ids=["typical", "no-user", "bearer", "escaped-path", "problem", "error-status"],
    )
    def test_the_common_and_the_long_way_write_the_same_line(
        self,
        pipe: tuple[int, int],
        monkeypatch: pytest.MonkeyPatch,
        fields: dict[str, Any],
        names: tuple[str, ...],
    ) -> None:
        """Both ways of writing a line follow the field lists: same fields, order and values."""
        monkeypatch.setattr("echod.telemetry.access_log._wall", lambda: 1_700_000_000.5)
        log = AccessLog(LogLevel.DEBUG, LineWriter(pipe[1]))
        one = record(**fields)
        log.request(one)
        [common] = read_lines(pipe[0])
        level = {200: "info", 404: "warning", 503: "error"}[one.status]
        long = json.loads(log._full_line(one, level))
        assert list(common) == list(long) == list(names)
        assert common == long

    @pytest.mark.parametrize("scheme", [None, "basic", "bearer"], ids=str)
    def test_the_line_names_the_scheme_of_the_credentials(
        self, pipe: tuple[int, int], scheme: str | None
    ) -> None:
        """authScheme is basic or bearer once the user is verified, null without a user."""
        log = AccessLog(LogLevel.INFO, LineWriter(pipe[1]))
        user = None if scheme is None else "alice"
        log.request(record(user=user, scheme=scheme or "basic"))
        log.request(record(401, user=None, scheme=scheme or "basic", detail="no"))
        log.request(record(404, user=user, scheme=scheme or "basic", detail="no"))
        lines = read_lines(pipe[0])
        assert [line["authScheme"] for line in lines] == [scheme, None, scheme]

    def test_a_forward_auth_line_adds_the_original_request(self, pipe: tuple[int, int]) -> None:
        """/auth/verify's line says what the proxy asked about, after the access fields."""
        log = AccessLog(LogLevel.INFO, LineWriter(pipe[1]))
        original = Original(method="DELETE", uri="/private?x=1", host="app.example", proto=None)
        log.request(record(path="/auth/verify", original=original))
        [line] = read_lines(pipe[0])
        assert list(line) == [*ACCESS_FIELDS, *ORIGINAL_FIELDS]
        assert [line[name] for name in ORIGINAL_FIELDS] == [
            "DELETE", "/private?x=1", "app.example", None,
        ]  # fmt: skip

    def test_a_websocket_line_adds_its_traffic(self, pipe: tuple[int, int]) -> None:
        """Written when the connection closes: the access fields, then the traffic."""
        log = AccessLog(LogLevel.INFO, LineWriter(pipe[1]))
        traffic = Traffic(messages_in=3, messages_out=2, bytes_in=30, bytes_out=20)
        traffic.closed_by = "idle"
        log.request(record(101, method="GET", websocket=traffic))
        [line] = read_lines(pipe[0])
        assert list(line) == [*ACCESS_FIELDS, *WEBSOCKET_FIELDS]
        assert (line["status"], line["level"]) == (101, "info")
        assert [line[name] for name in WEBSOCKET_FIELDS] == [3, 2, 30, 20, "idle"]

    def test_problem_lines_say_why_in_a_bounded_detail(self, pipe: tuple[int, int]) -> None:
        """4xx and 5xx lines carry the problem's detail, cut at MAX_DETAIL_CHARS and marked."""
        log = AccessLog(LogLevel.INFO, LineWriter(pipe[1]))
        log.request(record(400, detail="the body is not valid JSON"))
        log.request(record(404, detail="x" * 5000))
        log.request(record(200, detail=None))
        short, long, ok = read_lines(pipe[0])
        assert short["detail"] == "the body is not valid JSON"
        assert len(long["detail"]) <= MAX_DETAIL_CHARS
        assert long["detail"].startswith("xxx")
        assert long["detail"].endswith(" more]")
        assert "detail" not in ok

    def test_a_12_kb_path_is_cut_to_one_line(self, pipe: tuple[int, int]) -> None:
        """A path too long for PIPE_BUF is cut, in the message and in the path, and marked."""
        log_one_path = "/" + "p" * 12_000
        log = AccessLog(LogLevel.INFO, LineWriter(pipe[1]))
        log.request(record(404, method="GET", path=log_one_path))
        data = read_bytes(pipe[0])
        assert len(data) <= 4096
        line = json.loads(data)
        assert line["path"].startswith("/ppp")
        assert line["path"].endswith(" more]")
        assert line["message"].startswith("GET /ppp")

    def test_hostile_values_cannot_break_the_line(self, pipe: tuple[int, int]) -> None:
        """CR, LF and quotes in the path are escaped: one request, one line."""
        log = AccessLog(LogLevel.INFO, LineWriter(pipe[1]))
        log.request(record(404, method="GET", path='/x\r\n{"level":"info"}"', user=None))
        data = read_bytes(pipe[0])
        assert data.count(b"\n") == 1
        assert json.loads(data)["path"] == '/x\r\n{"level":"info"}"'

    def test_lines_wait_in_the_buffer_until_the_loop_flushes(self, pipe: tuple[int, int]) -> None:
        """Bound to a loop, lines are written together shortly after, not one by one."""

        async def scenario() -> tuple[int, int]:
            log = AccessLog(LogLevel.INFO, LineWriter(pipe[1]))
            log.bind(asyncio.get_running_loop())
            for _ in range(3):
                log_one(log, 200)
            before = len(read_lines(pipe[0]))
            await asyncio.sleep(0.2)
            return before, len(read_lines(pipe[0]))

        assert asyncio.run(scenario()) == (0, 3)

    def test_one_timer_serves_many_full_buffers(self, pipe: tuple[int, int]) -> None:
        """Under load the buffer fills and is written many times, and one timer is set."""
        timers: list[float] = []

        class CountingLoop(QuietLoop):
            def call_later(self, delay: float, callback: object) -> Any:
                timers.append(delay)
                return super().call_later(delay, callback)

        log = AccessLog(LogLevel.INFO, LineWriter(pipe[1]))
        log.bind(CountingLoop())  # type: ignore[arg-type]
        for _ in range(100):
            log_one(log, 200)
        assert len(read_lines(pipe[0])) > 50, "full buffers were written"
        assert timers == [FLUSH_DELAY]

    def test_flush_writes_everything_buffered(self, pipe: tuple[int, int]) -> None:
        """Shutdown calls flush: nothing buffered is lost."""

        async def scenario() -> int:
            log = AccessLog(LogLevel.INFO, LineWriter(pipe[1]))
            log.bind(asyncio.get_running_loop())
            for _ in range(5):
                log_one(log, 200)
            log.flush()
            return len(read_lines(pipe[0]))

        assert asyncio.run(scenario()) == 5

    def test_writes_are_whole_lines_of_at_most_pipe_buf(self, pipe: tuple[int, int]) -> None:
        """Each write holds whole lines and fits PIPE_BUF, so processes never interleave."""
        writes: list[bytes] = []

        async def scenario() -> None:
            log = AccessLog(LogLevel.INFO, LineWriter(pipe[1]))
            log.bind(asyncio.get_running_loop())
            real_write = os.write

            def spy(fd: int, data: bytes) -> int:
                writes.append(bytes(data))
                return real_write(fd, data)

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(os, "write", spy)
                for _ in range(100):
                    log_one(log, 200)
                log.flush()

        asyncio.run(scenario())
        assert len(writes) > 1
        for data in writes:
            assert len(data) <= 4096
            assert data.endswith(b"\n")
        assert sum(data.count(b"\n") for data in writes) == 100

    def test_a_closed_stdout_loses_the_line_not_the_request(self) -> None:
        """Logging to a closed descriptor drops what was buffered and goes on logging."""
        read, write = os.pipe()
        os.close(read)
        os.close(write)
        log = AccessLog(LogLevel.INFO, LineWriter(write))
        log.bind(QuietLoop())  # type: ignore[arg-type] # buffered: flush is what writes
        log_one(log, 200)
        assert log._writer._pending
        log.flush()  # EBADF: the line is lost, nothing is raised
        assert log._writer._pending == []
        assert log._writer._size == 0


class TestJsonFormatter:
    def test_records_become_echod_lines(self) -> None:
        """Start, stop and warning events share the request lines' shape."""
        record = logging.LogRecord("echod", logging.WARNING, "f", 1, "using %s", ("demo",), None)
        record.fields = {"pid": 7}
        line = json.loads(JsonFormatter().format(record))
        assert line["level"] == "warning"
        assert line["message"] == "using demo"
        assert line["logger"] == "echod"
        assert line["pid"] == 7
        assert line["time"].endswith("Z")

    def test_exceptions_carry_their_traceback(self) -> None:
        """An exception logged with exc_info keeps its traceback, on one line."""
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            record = logging.LogRecord("x", logging.ERROR, "f", 1, "failed", (), None)
            record.exc_info = sys.exc_info()
        text = JsonFormatter().format(record)
        assert "\n" not in text
        assert "ZeroDivisionError" in json.loads(text)["traceback"]
