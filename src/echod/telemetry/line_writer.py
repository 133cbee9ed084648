"""Line writer: whole log lines, written out by a thread of their own, never blocking serving.

Lines are gathered where they are made and handed over in batches: at most
:data:`FLUSH_DELAY` seconds after the first of a batch, or as soon as a batch is full.
A thread writes the batches out, so that a slow or stalled reader of stdout never
stops the event loop. What waits for that thread is bounded by ``--log-buffer-bytes``:
a batch that does not fit is dropped whole and counted, and once stdout drains again
one line says how many lines were dropped (:data:`DROPPED_MESSAGE`).

A line is written whole or not at all. A write to a pipe or a socket holds at most
``PIPE_BUF`` bytes of whole lines, which POSIX makes atomic, so that lines of several
processes on one pipe never interleave; a write to a regular file holds up to
:data:`FILE_BATCH_BYTES`. When a regular file fills up (``ENOSPC``, or a file size
limit) part way through a line, the file is cut back to the end of the last whole line,
and the rest of the batch is dropped and counted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import stat
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from echod.telemetry.log_line import MAX_LINE_BYTES, event_line

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

__all__ = [
    "DEFAULT_BUDGET_BYTES",
    "DROPPED_MESSAGE",
    "FILE_BATCH_BYTES",
    "FLUSH_DELAY",
    "LineWriter",
    "stdout_writer",
]

#: Seconds a line may wait before it is handed to the writing thread.
FLUSH_DELAY = 0.05
#: The most a write to a regular file holds, in whole lines.
FILE_BATCH_BYTES = 64 * 1024
#: Bytes of lines that may wait for the writing thread before more are dropped.
DEFAULT_BUDGET_BYTES = 8 * 1024 * 1024
#: The message of the line that says how many lines were dropped.
DROPPED_MESSAGE = "log lines dropped"
# Seconds a write waits for a descriptor that someone made non-blocking to take more.
_BUSY_WAIT = 0.05


class LineWriter:
    """Buffers whole lines for one file descriptor, and writes them from a thread of its own."""

    def __init__(self, fd: int, budget: int = DEFAULT_BUDGET_BYTES) -> None:
        """Write to the descriptor ``fd``; at most ``budget`` bytes wait to be written."""
        self._fd = fd
        self._file = _is_regular_file(fd)
        self._batch = FILE_BATCH_BYTES if self._file else MAX_LINE_BYTES
        self._budget = budget
        self._pending: list[bytes] = []
        self._size = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        # What the thread has to write, and what it has in hand: guarded by _ready.
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._writing = 0
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        #: Lines dropped so far, in all.
        self.dropped = 0
        self._unreported = 0
        self._on_drop: Callable[[int], None] | None = None
        self._uncounted = 0

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Hand lines over from ``loop`` soon after they arrive (or at once, if None)."""
        self._loop = loop

    def count_drops(self, count: Callable[[int], None]) -> None:
        """Call ``count`` with the number of each drop (from the writing thread).

        The lines dropped before it was given are counted at once.
        """
        with self._ready:
            self._on_drop = count
            uncounted, self._uncounted = self._uncounted, 0
        if uncounted:
            count(uncounted)

    def write(self, line: bytes) -> None:
        """Buffer one whole line; it is handed over within :data:`FLUSH_DELAY` seconds."""
        if self._size + len(line) > self._batch:
            self._hand_over()
        self._pending.append(line)
        self._size += len(line)
        if self._loop is None:
            self._hand_over()
        elif self._timer is None:
            # One timer at a time, left to run out rather than cancelled when the batch
            # fills first: setting and cancelling a timer per write costs more than the
            # write itself under load.
            self._timer = self._loop.call_later(FLUSH_DELAY, self._on_timer)

    def flush(self, timeout: float = 1.0) -> bool:
        """Hand every buffered line over and wait up to ``timeout`` s for it to be written.

        Returns whether everything was written (or dropped) in time: False when stdout
        stalls.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._hand_over()
        deadline = time.monotonic() + timeout
        with self._ready:
            while self._queue or self._writing:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None:
                    return False
                self._ready.wait(left)
        return True

    def _on_timer(self) -> None:
        self._timer = None
        self._hand_over()

    def _hand_over(self) -> None:
        """Give the buffered lines to the writing thread as one batch, or drop them."""
        if not self._pending:
            return
        batch = b"".join(self._pending)
        lines = len(self._pending)
        self._pending.clear()
        self._size = 0
        with self._ready:
            if self._queued + len(batch) > self._budget:
                self._drop_locked(lines)
                return
            self._queue.append(batch)
            self._queued += len(batch)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="echod-log-writer", daemon=True
                )
                self._thread.start()
            self._ready.notify_all()

    def _drop_locked(self, lines: int) -> None:
        """Count ``lines`` as dropped (with ``_ready`` held)."""
        self.dropped += lines
        self._unreported += lines
        if self._on_drop is None:
            self._uncounted += lines
        else:
            self._on_drop(lines)

    def _run(self) -> None:
        """Write batches as they come, for as long as the process runs."""
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                batch = self._queue.popleft()
                self._queued -= len(batch)
                self._writing = 1
            lost = self._write_whole_lines(batch)
            with self._ready:
                if lost:
                    self._drop_locked(lost)
                report = self._unreported if not self._queue and not lost else 0
                self._unreported -= report
            if report:
                line = event_line(DROPPED_MESSAGE, "echod", {"dropped": report}, level="warning")
                if self._write_whole_lines(line):
                    with self._ready:
                        self._unreported += report
            with self._ready:
                self._writing = 0
                self._ready.notify_all()

    def _write_whole_lines(self, data: bytes) -> int:
        """Write ``data``, whole lines; return how many of its lines were lost."""
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:  # someone made the descriptor non-blocking
                with contextlib.suppress(OSError, ValueError):
                    select.select([], [self._fd], [], _BUSY_WAIT)
                continue
            except OSError as error:
                return self._lost(view, error)
            if written < len(view) and self._file:  # the file is full part way through
                return self._cut_back(view, written)
            view = view[written:]
        return 0

    def _lost(self, view: memoryview, error: OSError) -> int:
        """The lines of ``view`` that ``error`` kept from being written (none reaches stdout)."""
        if error.errno in {errno.ENOSPC, errno.EFBIG, errno.EDQUOT} and self._file:
            return self._cut_back(view, 0)
        return _lines(view)

    def _cut_back(self, view: memoryview, written: int) -> int:
        """After ``written`` bytes of ``view`` went into a full file, keep only whole lines.

        The file is cut back to the end of the last whole line, so that no line is left
        torn; returns how many lines of ``view`` were lost.
        """
        whole = bytes(view[:written]).rfind(b"\n") + 1
        if whole < written:
            with contextlib.suppress(OSError):
                end = os.lseek(self._fd, 0, os.SEEK_CUR)
                os.ftruncate(self._fd, end - written + whole)
                os.lseek(self._fd, end - written + whole, os.SEEK_SET)
        return _lines(view[whole:])


def _lines(view: memoryview) -> int:
    """How many lines ``view`` holds (or begins: a line without its newline counts)."""
    data = bytes(view)
    return data.count(b"\n") + (not data.endswith(b"\n") and bool(data))


def _is_regular_file(fd: int) -> bool:
    """Whether ``fd`` is a regular file: writes to it hold larger batches of lines.

    Writes to a pipe or a socket are only atomic up to ``PIPE_BUF``, so lines from
    several processes could interleave in a larger one. A write to a regular file holds
    the file's lock for its whole length on Linux, and each costs tens of microseconds
    whatever its size.
    """
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


_stdout: LineWriter | None = None


def stdout_writer(budget: int | None = None) -> LineWriter:
    """This process's writer of stdout: made at the first call, with ``budget`` if given.

    A process that forks gets a writer of its own in the child, at its first call there.
    """
    global _stdout  # noqa: PLW0603 - one writer per process, whoever asks for it first
    if _stdout is None:
        _stdout = LineWriter(1, DEFAULT_BUDGET_BYTES if budget is None else budget)
        os.register_at_fork(after_in_child=_forget_stdout)
    return _stdout


def _forget_stdout() -> None:
    global _stdout  # noqa: PLW0603 - its thread did not survive the fork
    _stdout = None
