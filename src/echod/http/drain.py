"""Drain: how a worker's long requests and connections learn that they must end.

A worker stops in two ways. The whole instance drains (SIGTERM to echod): the supervisor
clears the shared ready byte, and while any long request runs, one task per worker looks
at that byte a few times a second. Or granian replaces the worker (a reload, or
shutdown): it sends the worker SIGTERM, which :meth:`Drain.close_before_stopping` takes
over. Either way, delays and streams waiting in :meth:`Drain.sleep` wake at once, and
the WebSockets registered with :meth:`Drain.cancelling` are cancelled, each with the
reason ``"shutdown"``.

A worker that granian stops also ends its kept-alive HTTP/1.1 connections cleanly: for
:data:`CLOSE_GRACE` seconds each answer says ``Connection: close``
(:attr:`Drain.stopping`), so a client opens a new connection for its next request
instead of sending it on one that the worker is about to close. A WebSocket also ends
when its client stays silent for ``--ws-idle-timeout`` (:class:`IdleTimer`).

The long requests a client asks for (delays, streams and drips) also share one bound per
worker, :data:`MAX_DELAYED`, held with :meth:`Drain.holding`: past it, a new one is
answered 503 with ``Retry-After: 1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from functools import partial
from typing import TYPE_CHECKING

from echod.http.problems import ServiceUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "CLOSE_GRACE",
    "CLOSE_WAIT",
    "IDLE",
    "MAX_DELAYED",
    "POLL",
    "SHUTDOWN",
    "Drain",
    "IdleTimer",
]

#: Delays, streams and drips in flight per worker; one more is answered 503.
MAX_DELAYED = 1000
#: Seconds between two looks at the ready byte while long requests run.
POLL = 0.2
#: The reason a drained connection's task is cancelled with.
SHUTDOWN = "shutdown"
#: The reason an idle WebSocket's task is cancelled with (:class:`IdleTimer`).
IDLE = "idle"
#: Seconds a stopping worker waits at most for its WebSockets to be closed and logged.
CLOSE_WAIT = 1.0
#: Seconds a stopping worker answers with ``Connection: close`` before granian closes
#: the connections that are still open.
CLOSE_GRACE = 0.5


class Drain:
    """One worker's view of the drain: sleeps that end early, tasks that get cancelled."""

    def __init__(self, is_ready: Callable[[], bool]) -> None:
        """Watch ``is_ready``, the shared ready byte."""
        self._is_ready = is_ready
        self._event: asyncio.Event | None = None
        self._sleepers = 0
        self._tasks: set[asyncio.Task[object]] = set()
        self._watcher: asyncio.Future[None] | None = None
        self._stopper: asyncio.Task[None] | None = None
        self._emptied: asyncio.Event | None = None
        #: Whether granian is stopping this worker: it takes no new WebSocket then, and
        #: each answer closes its connection.
        self.stopping = False
        #: The delays, streams and drips in flight (:meth:`holding`).
        self.held = 0

    @property
    def draining(self) -> bool:
        """Whether the instance is shutting down, or this worker is stopping."""
        return self.stopping or not self._is_ready()

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if the instance drains; return whether it drained."""
        if self._event is None:
            self._event = asyncio.Event()
        self._sleepers += 1
        self._watch()
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            return False
        finally:
            self._sleepers -= 1
        return True

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Hold one of the worker's :data:`MAX_DELAYED` places while a long request runs.

        Raises:
            ServiceUnavailable: every place is taken (503, with ``Retry-After: 1``).
        """
        if self.held >= MAX_DELAYED:
            raise ServiceUnavailable(
                f"{MAX_DELAYED} delays, streams and drips are running in this worker already"
            )
        self.held += 1
        try:
            yield
        finally:
            self.held -= 1

    @contextlib.contextmanager
    def cancelling(self, task: asyncio.Task[object]) -> Iterator[int]:
        """Cancel ``task`` with :data:`SHUTDOWN` if the instance drains meanwhile.

        Yields how many such tasks the worker has, this one included.
        """
        self._tasks.add(task)
        self._watch()
        try:
            yield len(self._tasks)
        finally:
            self._tasks.discard(task)
            if not self._tasks and self._emptied is not None:
                self._emptied.set()

    def close_before_stopping(
        self, loop: asyncio.AbstractEventLoop, hand_over: Callable[[], None] | None = None
    ) -> None:
        """On SIGTERM, end the long requests and close connections cleanly, then stop.

        granian sends a worker SIGTERM when it stops it: on shutdown, and when a reload
        replaces it. It then closes the idle kept-alive connections at once, racing any
        request a client is sending on one, and the event loop stops as soon as the
        requests in flight are answered, dropping the WebSockets without a close frame
        or a log line. So echod takes SIGTERM over: it wakes the delays and streams,
        closes its WebSockets (waiting at most :data:`CLOSE_WAIT` for their log lines)
        and answers with ``Connection: close`` for :data:`CLOSE_GRACE`, then calls
        ``hand_over``: by default SIGINT to this process, which granian's worker handles
        exactly as SIGTERM (``granian._signals.set_loop_signals``).
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
        self._end_all()
        await asyncio.gather(self._websockets_closed(), asyncio.sleep(CLOSE_GRACE))
        hand_over()

    async def _websockets_closed(self) -> None:
        # A connection's task logs it right after it leaves the set, in the same step.
        if self._tasks and self._emptied is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_WAIT):
                    await self._emptied.wait()

    def _end_all(self) -> None:
        """Wake every sleeper and cancel every registered task."""
        if self._event is not None:
            self._event.set()
        for task in list(self._tasks):
            task.cancel(SHUTDOWN)

    def _watch(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        # One look at the shared ready byte a few times a second serves every waiter.
        while self._sleepers or self._tasks:
            if self.draining:
                self._end_all()
                return
            await asyncio.sleep(POLL)


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
            self._task.cancel(IDLE)
        else:
            self._handle = self._loop.call_at(due, self._fire)
