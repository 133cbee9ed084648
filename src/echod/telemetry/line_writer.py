"""Writer: buffers whole log lines and writes them out atomically, soon after they come.

Lines wait at most :data:`FLUSH_DELAY` seconds. A write to a pipe or a socket holds at
most ``PIPE_BUF`` bytes of whole lines, so that lines from several worker processes on
one pipe never interleave; a write to a regular file holds up to
:data:`FILE_BATCH_BYTES`. The buffer is also written when it fills, and on shutdown.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from echod.telemetry.log_line import MAX_LINE_BYTES

if TYPE_CHECKING:
    import asyncio

__all__ = ["FILE_BATCH_BYTES", "FLUSH_DELAY", "LineWriter"]

#: Seconds a line may wait in the buffer before it is written.
FLUSH_DELAY = 0.05
#: The most a write to a regular file holds, in whole lines.
FILE_BATCH_BYTES = 64 * 1024


class LineWriter:
    """Buffers whole lines for one file descriptor and writes them in few, atomic writes."""

    def __init__(self, fd: int) -> None:
        """Write to the file descriptor ``fd``."""
        self._fd = fd
        self._batch = _batch_size(fd)
        self._pending: list[bytes] = []
        self._size = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Write buffered lines from ``loop`` soon after they arrive (or at once, if None)."""
        self._loop = loop

    def write(self, line: bytes) -> None:
        """Buffer one whole line; it is written within :data:`FLUSH_DELAY` seconds."""
        if self._size + len(line) > self._batch:
            self._write_out()
        self._pending.append(line)
        self._size += len(line)
        if self._loop is None:
            self._write_out()
        elif self._timer is None:
            # One timer at a time, left to run out rather than cancelled when the buffer
            # fills first: setting and cancelling a timer per write costs more than the
            # write itself under load.
            self._timer = self._loop.call_later(FLUSH_DELAY, self._on_timer)

    def flush(self) -> None:
        """Write every buffered line now (on shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._write_out()

    def _on_timer(self) -> None:
        self._timer = None
        self._write_out()

    def _write_out(self) -> None:
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


def _batch_size(fd: int) -> int:
    """How many bytes of whole lines one write to ``fd`` may carry.

    Writes to a pipe or a socket are only atomic up to ``PIPE_BUF``, so lines from
    several workers could interleave in a larger one. A write to a regular file holds
    the file's lock for its whole length on Linux, so a file gets larger batches: each
    write to a file costs tens of microseconds, whatever its size.
    """
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        regular = False
    return FILE_BATCH_BYTES if regular else MAX_LINE_BYTES
