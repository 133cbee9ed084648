"""Connections: a worker's open connections, and what ends those their clients keep open.

Three things end a WebSocket from echod's side: no message from its client for
``--ws-idle-timeout`` seconds (:class:`IdleTimer`), the instance draining, which the
ready byte says, and the worker stopping, which SIGTERM says (:class:`Connections`).
Each cancels the connection's task with its reason, and the connection logs the reason
as ``closedBy``. A stopping worker also ends its kept-alive HTTP/1.1 connections
cleanly: for :data:`CLOSE_GRACE` seconds each answer says ``Connection: close``, so a
client opens a new connection for its next request instead of sending it on one that
the worker is about to close.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CLOSE_WAIT", "DRAIN_POLL", "Connections", "IdleTimer"]

#: Seconds between two looks at the ready byte while WebSockets are open.
DRAIN_POLL = 0.2
#: Seconds a stopping worker waits at most for its WebSockets to be closed and logged.
CLOSE_WAIT = 1.0
#: Seconds a stopping worker answers with ``Connection: close`` before granian closes
#: the connections that are still open.
CLOSE_GRACE = 0.5


class Connections:
    """One worker's open WebSockets, closed on a drain or a stop, and whether it stops."""

    def __init__(self, is_ready: Callable[[], bool]) -> None:
        """Watch ``is_ready`` (the ready byte) while any connection is open."""
        self._is_ready = is_ready
        self._open: set[asyncio.Task[object]] = set()
        self._watcher: asyncio.Future[None] | None = None
        self._stopper: asyncio.Task[None] | None = None
        self._emptied: asyncio.Event | None = None
        #: Whether this worker is stopping: it takes no new WebSocket then, and each
        #: answer closes its connection.
        self.stopping = False

    def __len__(self) -> int:
        """How many WebSockets are open."""
        return len(self._open)

    def add(self, task: asyncio.Task[object]) -> None:
        """A WebSocket is open, served by ``task``."""
        self._open.add(task)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.ensure_future(self._close_on_drain())

    def discard(self, task: asyncio.Task[object]) -> None:
        """The WebSocket of ``task`` is closed."""
        self._open.discard(task)
        if not self._open and self._emptied is not None:
            self._emptied.set()

    def close_all(self, reason: str) -> None:
        """End every open WebSocket, giving ``reason`` as what closed it."""
        for task in list(self._open):
            task.cancel(reason)

    def close_before_stopping(
        self, loop: asyncio.AbstractEventLoop, hand_over: Callable[[], None] | None = None
    ) -> None:
        """On SIGTERM, close the connections cleanly first, then let granian stop the worker.

        granian sends a worker SIGTERM when it stops it: on shutdown, and when a reload
        replaces it. It then closes the idle kept-alive connections at once, racing any
        request a client is sending on one, and the event loop stops as soon as the
        requests in flight are answered, dropping the WebSockets without a close frame
        or a log line. So echod takes SIGTERM over: it closes its WebSockets (waiting at
        most :data:`CLOSE_WAIT` for their log lines) and answers with ``Connection:
        close`` for :data:`CLOSE_GRACE`, then calls ``hand_over``: by default SIGINT to
        this process, which granian's worker handles exactly as SIGTERM
        (``granian._signals.set_loop_signals``).
        """
        if hand_over is None:
            hand_over = partial(os.kill, os.getpid(), signal.SIGINT)

        def on_sigterm() -> None:
            if not self.stopping:
                self.stopping = True
                self._stopper = loop.create_task(self._stop(hand_over))

        loop.add_signal_handler(signal.SIGTERM, on_sigterm)

    async def _stop(self, hand_over: Callable[[], None]) -> None:
        self._emptied = asyncio.Event()
        self.close_all("shutdown")
        await asyncio.gather(self._websockets_closed(), asyncio.sleep(CLOSE_GRACE))
        hand_over()

    async def _websockets_closed(self) -> None:
        # A connection's task logs it right after it leaves the set, in the same step.
        if self._open and self._emptied is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_WAIT):
                    await self._emptied.wait()

    async def _close_on_drain(self) -> None:
        # One look at the shared ready byte a few times a second serves every connection.
        while self._open:
            if not self._is_ready():
                self.close_all("shutdown")
                return
            await asyncio.sleep(DRAIN_POLL)


class IdleTimer:
    """Cancels a connection's task once no message has come for ``timeout`` seconds.

    One timer per connection, moved only when it fires: setting and cancelling a timer
    for every message would cost more than the message.
    """

    __slots__ = ("_handle", "_last", "_loop", "_task", "_timeout")

    def __init__(self, task: asyncio.Task[object], timeout: float) -> None:
        """Start counting for ``task``."""
        self._task = task
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._handle = self._loop.call_at(self._last + timeout, self._fire)

    def touch(self) -> None:
        """A message came: the idle time starts again."""
        self._last = self._loop.time()

    def stop(self) -> None:
        """The connection ends: no more checks."""
        self._handle.cancel()

    def _fire(self) -> None:
        due = self._last + self._timeout
        if self._loop.time() >= due:
            self._task.cancel("idle")
        else:
            self._handle = self._loop.call_at(due, self._fire)
