"""Drain: how a serving process's long requests and connections learn that they must end.

Two things end them. The whole instance drains (SIGTERM to echod): the shared ready byte
turns to draining, and while any long request runs, one task per process looks at that
byte a few times a second. Or the process is told to stop (:meth:`Drain.stop`). Either
way, delays and streams waiting in :meth:`Drain.sleep` wake at once, and the WebSockets
registered with :meth:`Drain.cancelling` are cancelled, each with the reason
``"shutdown"``.

A process that stops also ends its kept-alive HTTP/1.1 connections cleanly: for
:data:`CLOSE_GRACE` seconds each answer says ``Connection: close``
(:attr:`Drain.stopping`), so a client opens a new connection for its next request
instead of sending it on one that is about to be closed. A WebSocket also ends when its
client stays silent for ``--ws-idle-timeout`` (:class:`IdleTimer`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "CLOSE_GRACE",
    "CLOSE_WAIT",
    "IDLE",
    "POLL",
    "SHUTDOWN",
    "Drain",
    "IdleTimer",
    "listener_of",
]

#: Seconds between two looks at the ready byte while long requests run.
POLL = 0.2
#: The reason a drained connection's task is cancelled with.
SHUTDOWN = "shutdown"
#: The reason an idle WebSocket's task is cancelled with (:class:`IdleTimer`).
IDLE = "idle"
#: Seconds a stopping process waits at most for its WebSockets to be closed and logged.
CLOSE_WAIT = 1.0
#: Seconds a stopping worker answers with ``Connection: close`` before granian closes
#: the connections that are still open.
CLOSE_GRACE = 0.5


def listener_of(scheme: str) -> str:
    """The listener a request came through, by its scope's scheme: "https" or "http"."""
    return "https" if scheme in {"https", "wss"} else "http"


class Drain:
    """One process's view of the drain: sleeps that end early, tasks that get cancelled.

    What runs long is registered under its listener ("http" or "https"), so that the
    requests of one server can be ended when a reload replaces that server alone.
    """

    def __init__(self, is_ready: Callable[[], bool]) -> None:
        """Watch ``is_ready``, the shared ready byte."""
        self._is_ready = is_ready
        self._events: dict[str, asyncio.Event] = {}
        self._sleepers = 0
        self._tasks: dict[asyncio.Task[object], str] = {}
        self._watcher: asyncio.Future[None] | None = None
        self._emptied: asyncio.Event | None = None
        #: Whether this process is stopping: it takes no new WebSocket then, and each
        #: answer closes its connection.
        self.stopping = False
        #: The listeners whose server a reload is replacing: their answers close their
        #: connections, as a stopping process's do.
        self.closing: frozenset[str] = frozenset()

    @property
    def draining(self) -> bool:
        """Whether the instance is shutting down, or this process is stopping."""
        return self.stopping or not self._is_ready()

    def closes(self, listener: str) -> bool:
        """Whether an answer on ``listener`` closes its connection (a stop, or a replacement)."""
        return self.stopping or listener in self.closing

    async def sleep(self, seconds: float, listener: str = "http") -> bool:
        """Wait ``seconds``, or less if the instance drains or ``listener``'s server is replaced.

        Returns whether it was cut short.
        """
        event = self._events.get(listener)
        if event is None:
            event = self._events[listener] = asyncio.Event()
        self._sleepers += 1
        self._watch()
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            return False
        finally:
            self._sleepers -= 1
        return True

    @contextlib.contextmanager
    def cancelling(self, task: asyncio.Task[object], listener: str = "http") -> Iterator[int]:
        """Cancel ``task`` with :data:`SHUTDOWN` on a drain, or when its server is replaced.

        ``listener`` is the one that the task's connection came through. Yields how many
        such tasks the process has, this one included.
        """
        self._tasks[task] = listener
        self._watch()
        try:
            yield len(self._tasks)
        finally:
            self._tasks.pop(task, None)
            if not self._tasks and self._emptied is not None:
                self._emptied.set()

    async def stop(self) -> None:
        """End the long requests and have clients leave their connections, before a stop.

        Once the process is told to stop, and before its servers stop: it wakes the
        delays and streams, closes its WebSockets (waiting at most :data:`CLOSE_WAIT`
        for their log lines) and answers with ``Connection: close`` for
        :data:`CLOSE_GRACE`, so that a kept-alive client opens a new connection for its
        next request rather than send it on one about to be closed.
        """
        self.stopping = True
        await self._end(set(self._events) | set(self._tasks.values()))

    async def replace(self, listener: str) -> None:
        """Do for ``listener``'s requests what :meth:`stop` does, before its server is replaced.

        The server that replaces it is already serving: what arrives from now on is
        not ended.
        """
        self.closing |= {listener}
        await self._end({listener}, renew=True)

    def replaced(self, listener: str) -> None:
        """``listener``'s old server has stopped: answers there keep their connections again."""
        self.closing -= {listener}

    async def _end(self, listeners: set[str], *, renew: bool = False) -> None:
        self._emptied = asyncio.Event()
        self._end_all(listeners, renew=renew)
        await asyncio.gather(self._websockets_closed(listeners), asyncio.sleep(CLOSE_GRACE))

    async def _websockets_closed(self, listeners: set[str]) -> None:
        # A connection's task logs it right after it leaves the set, in the same step.
        while any(listener in listeners for listener in self._tasks.values()):
            emptied = self._emptied = asyncio.Event()
            try:
                async with asyncio.timeout(CLOSE_WAIT):
                    await emptied.wait()
            except TimeoutError:
                return

    def _end_all(self, listeners: set[str] | None = None, *, renew: bool = False) -> None:
        """Wake the sleepers and cancel the registered tasks of ``listeners`` (all by default).

        With ``renew``, sleepers that come later (on the server that replaces the old one)
        wait on a new event; otherwise they are woken at once, as the instance drains.
        """
        for listener in list(self._events):
            if listeners is None or listener in listeners:
                event = self._events.pop(listener) if renew else self._events[listener]
                event.set()
        for task, listener in list(self._tasks.items()):
            if listeners is None or listener in listeners:
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
