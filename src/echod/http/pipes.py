"""Pipes: long answers sent at the pace the client reads them, in little memory.

granian keeps whatever a streamed answer hands it (``send_bytes`` never waits), so an
answer written faster than its client reads would pile up in the process. A file answer
is different: granian reads the file as the client takes the bytes. So echod writes a
long answer into a pipe, and hands granian the pipe as a file to read
(``/proc/self/fd/N``): the pipe's buffer, :data:`PIPE_BYTES`, is all that waits, and a
write waits while it is full. The pipe's read end is granian's alone, so a client that
leaves breaks the pipe, and the writer learns of it at its next write.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from granian.rsgi import HTTPProtocol  # type: ignore[attr-defined]

__all__ = ["OPEN_TIMEOUT", "PIPE_BYTES", "STALL_TIMEOUT", "ClientGone", "Pipe"]

#: The pipe's buffer, in bytes (Linux allows up to /proc/sys/fs/pipe-max-size, 1 MiB).
PIPE_BYTES = 256 * 1024
#: Seconds a client may read nothing before its answer is abandoned.
STALL_TIMEOUT = 60.0
#: Seconds granian has to open the pipe, which it does as soon as it sends the head.
OPEN_TIMEOUT = 10.0
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, which Python has from 3.10 on Linux only


class ClientGone(Exception):  # noqa: N818 - an event, as granian's ProtocolClosed
    """The client left, or read nothing for :data:`STALL_TIMEOUT` seconds."""


class Pipe:
    """One answer's pipe: its head is sent, its body written with :meth:`write`."""

    def __init__(self, proto: HTTPProtocol, status: int, headers: list[tuple[str, str]]) -> None:
        """Send the head of the answer; its body is what is written next."""
        read, self._fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        os.close(read)  # granian opens its own read end; until it has, a write breaks
        with contextlib.suppress(OSError):  # a smaller buffer only costs more wake-ups
            fcntl.fcntl(self._fd, _F_SETPIPE_SZ, PIPE_BYTES)
        self._opened = False
        self._waited, self._pause = 0.0, 0.001
        proto.response_file(status, headers, f"/proc/self/fd/{self._fd}")

    async def write(self, data: bytes) -> None:
        """Write ``data``, waiting while the pipe is full.

        Raises:
            ClientGone: the client left, or read nothing for :data:`STALL_TIMEOUT`.
        """
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._fd, view) :]
                self._opened = True
            except BlockingIOError:
                await self._writable()
            except BrokenPipeError:
                if self._opened:
                    raise ClientGone from None
                await self._open()

    def close(self) -> None:
        """End the body: granian reads to the end of the pipe, then ends the answer."""
        os.close(self._fd)

    async def _writable(self) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def wake() -> None:
            loop.remove_writer(self._fd)
            if not ready.done():
                ready.set_result(None)

        loop.add_writer(self._fd, wake)
        try:
            async with asyncio.timeout(STALL_TIMEOUT):
                await ready
        except TimeoutError:
            raise ClientGone from None
        finally:
            loop.remove_writer(self._fd)

    async def _open(self) -> None:
        """Wait a little more for granian to open the pipe: until then a write breaks it."""
        if self._waited >= OPEN_TIMEOUT:
            raise ClientGone
        await asyncio.sleep(self._pause)
        self._waited += self._pause
        self._pause = min(self._pause * 2, 0.05)
