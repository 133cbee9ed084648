"""Lines: every log line fits PIPE_BUF, with long fields cut and marked."""

from __future__ import annotations

import json
import logging
import re

import pytest

from echod.telemetry.log_line import CUT_MARKER, MAX_LINE_BYTES, JsonFormatter, fit_line

CUT = re.compile(re.escape(CUT_MARKER).replace(r"\{\}", r"(\d+)") + "$")


def uncut(value: str) -> tuple[str, int]:
    """The kept part of a cut value and how many characters the marker says were cut."""
    match = CUT.search(value)
    assert match is not None, value[-40:]
    return value[: match.start()], int(match.group(1))


class TestFitLine:
    def test_a_short_line_is_written_as_it_is(self) -> None:
        """Nothing is cut from a line that fits."""
        fields = {"time": "t", "level": "info", "message": "hello", "path": "/x"}
        assert fit_line(fields) == b'{"time":"t","level":"info","message":"hello","path":"/x"}\n'

    @pytest.mark.parametrize(
        "character", ["a", "é", "\x01", "\U0001f600"], ids=["ascii", "accent", "control", "emoji"]
    )
    def test_a_12_kb_path_is_cut_to_fit_with_a_marker(self, character: str) -> None:
        """A path of any characters, 12 KB long, twice in the line: the line still fits."""
        path = "/" + character * 12_000
        fields = {
            "time": "2026-11-29T13:09:43.618Z",
            "level": "warning",
            "message": f"GET {path} HTTP/1.1",
            "method": "GET",
            "path": path,
            "status": 404,
            "requestId": "r" * 128,
        }
        line = fit_line(fields)
        assert len(line) <= MAX_LINE_BYTES
        assert line.endswith(b"\n")
        assert line.count(b"\n") == 1
        parsed = json.loads(line)
        kept, cut = uncut(parsed["path"])
        assert path.startswith(kept)
        assert len(kept) + cut == len(path)
        assert len(kept) > 100, "the room is shared, not given up"
        assert uncut(parsed["message"])[0].startswith("GET /")
        assert (parsed["status"], parsed["requestId"]) == (404, "r" * 128)

    def test_short_fields_are_kept_and_long_ones_share_the_room(self) -> None:
        """A short user name survives whole beside a long traceback and path."""
        fields = {
            "level": "error",
            "path": "/p" * 5000,
            "userId": "alice",
            "traceback": "Traceback\n" * 2000,
        }
        parsed = json.loads(fit_line(fields))
        assert parsed["userId"] == "alice"
        assert uncut(parsed["path"])[1] > 0
        assert uncut(parsed["traceback"])[1] > 0


class TestJsonFormatter:
    def test_a_long_event_fits_one_line(self) -> None:
        """Events through logging are cut the same way: one line, at most PIPE_BUF."""
        record = logging.LogRecord("echod", logging.ERROR, "f", 1, "%s", ("x" * 20_000,), None)
        text = JsonFormatter().format(record)
        assert len(text.encode()) + 1 <= MAX_LINE_BYTES  # the handler adds the newline
        assert "\n" not in text
        assert uncut(json.loads(text)["message"])[1] > 0
