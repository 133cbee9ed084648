"""Line writer: whole lines from a thread of its own, bounded, never blocking who logs."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from echod.telemetry.line_writer import DROPPED_MESSAGE, LineWriter

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

LINE = b'{"message":"%05d","padding":"' + b"x" * 80 + b'"}\n'


def line(n: int) -> bytes:
    """A JSON line of about 100 bytes that says its number."""
    return LINE % n


class Stalled:
    """A pipe whose reader does not read until the test says so, and its writers."""

    def __init__(self) -> None:
        """Make the pipe."""
        self.read, self.write = os.pipe()
        self.writers: list[LineWriter] = []

    def writer(self, budget: int) -> LineWriter:
        """A writer of the pipe, with ``budget`` bytes of room."""
        self.writers.append(LineWriter(self.write, budget=budget))
        return self.writers[-1]

    def close(self) -> None:
        """Close the reading end first, so that each writer's thread gives up, then the rest.

        A thread still writing when its descriptor is closed could write into the next
        file that takes the number.
        """
        os.close(self.read)
        for writer in self.writers:
            writer.flush(timeout=5)
        os.close(self.write)


@pytest.fixture
def stalled() -> Iterator[Stalled]:
    """A pipe whose reader does not read until the test says so."""
    made = Stalled()
    yield made
    made.close()


def drain(fd: int) -> list[bytes]:
    """Everything written to the pipe ``fd`` so far, as lines."""
    os.set_blocking(fd, False)
    data = b""
    try:
        while chunk := os.read(fd, 1 << 20):
            data += chunk
    except BlockingIOError:
        pass
    return data.splitlines(keepends=True)


class TestStalledReader:
    def test_writing_never_waits_for_a_stalled_reader(self, stalled: Stalled) -> None:
        """10,000 lines into a pipe nobody reads: each write returns at once."""
        writer = stalled.writer(256 * 1024)
        began = time.monotonic()
        for n in range(10_000):
            writer.write(line(n))
        assert time.monotonic() - began < 2
        assert not writer.flush(timeout=0.2)  # stdout is stalled: flush says so
        assert writer.dropped > 0

    def test_drops_are_counted_and_said_once_stdout_drains(self, stalled: Stalled) -> None:
        """What did not fit is dropped whole; one line then says how many were dropped."""
        counted: list[int] = []
        writer = stalled.writer(64 * 1024)
        writer.count_drops(counted.append)
        for n in range(3_000):
            writer.write(line(n))
        writer.flush(timeout=0.2)
        lines: list[bytes] = []
        deadline = time.monotonic() + 10
        while not any(DROPPED_MESSAGE.encode() in each for each in lines):
            assert time.monotonic() < deadline, "no line said how many were dropped"
            lines += drain(stalled.read)
            time.sleep(0.02)
        report = json.loads(next(each for each in lines if DROPPED_MESSAGE.encode() in each))
        written = [each for each in lines if DROPPED_MESSAGE.encode() not in each]
        assert report["level"] == "warning"
        assert report["dropped"] == writer.dropped == sum(counted) == 3_000 - len(written)
        assert all(json.loads(each)["padding"] for each in written), "every line is whole"

    def test_drops_before_counting_is_wired_are_counted_then(self, stalled: Stalled) -> None:
        """A metric wired after the first drops still gets them."""
        writer = stalled.writer(64 * 1024)
        for n in range(3_000):
            writer.write(line(n))
        writer.flush(timeout=0.2)
        counted: list[int] = []
        writer.count_drops(counted.append)
        assert sum(counted) == writer.dropped > 0


class TestFullFile:
    def test_a_full_file_keeps_whole_lines_only(self, tmp_path: Path) -> None:
        """At a file size limit part way through a line, the file ends at the last whole one."""
        out = tmp_path / "log"
        limit = 10 * len(line(0)) + 37  # room for ten lines and part of an eleventh
        code = (
            "import sys\n"
            "from echod.telemetry.line_writer import LineWriter\n"
            f"w = LineWriter(1)\n"
            f"for n in range(50): w.write({LINE!r} % n)\n"
            "w.flush(5)\n"
            "sys.stderr.write(str(w.dropped))\n"
        )

        def limited() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        with out.open("wb") as stdout:
            done = subprocess.run(
                [sys.executable, "-c", code],
                stdout=stdout,
                stderr=subprocess.PIPE,
                preexec_fn=limited,
                check=True,
                timeout=30,
            )
        data = out.read_bytes()
        assert data.endswith(b"\n")
        assert [json.loads(each)["message"] for each in data.splitlines()] == [
            f"{n:05d}" for n in range(10)
        ]
        assert int(done.stderr) == 40
