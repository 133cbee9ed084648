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


class Drain:
    """One process's view of the drain: sleeps that end early, tasks that get cancelled.

    What runs long is registered under the server that took it
    (:attr:`echod.telemetry.records.RequestRecord.server`), so that the requests of one
    server can be ended when a reload replaces that server alone.
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

    @property
    def draining(self) -> bool:
        """Whether the instance is shutting down, or this process is stopping."""
        return self.stopping or not self._is_ready()

    async def sleep(self, seconds: float, server: str = "") -> bool:
        """Wait ``seconds``, or less if the instance drains or ``server`` is replaced.

        Returns whether it was cut short.
        """
        event = self._events.get(server)
        if event is None:
            event = self._events[server] = asyncio.Event()
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
    def cancelling(self, task: asyncio.Task[object], server: str = "") -> Iterator[int]:
        """Cancel ``task`` with :data:`SHUTDOWN` on a drain, or when its server is replaced.

        ``server`` is the one that took the task's connection. Yields how many such
        tasks the process has, this one included.
        """
        self._tasks[task] = server
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

    async def replace(self, server: str) -> None:
        """Do for ``server``'s requests what :meth:`stop` does, before it is replaced.

        The server that replaces it is already serving, and what it takes is not ended.
        """
        await self._end({server}, renew=True)

    async def _end(self, servers: set[str], *, renew: bool = False) -> None:
        self._emptied = asyncio.Event()
        self._end_all(servers, renew=renew)
        await asyncio.gather(self._websockets_closed(servers), asyncio.sleep(CLOSE_GRACE))

    async def _websockets_closed(self, servers: set[str]) -> None:
        # A connection's task logs it right after it leaves the set, in the same step.
        while any(server in servers for server in self._tasks.values()):
            emptied = self._emptied = asyncio.Event()
            try:
                async with asyncio.timeout(CLOSE_WAIT):
                    await emptied.wait()
            except TimeoutError:
                return

    def _end_all(self, servers: set[str] | None = None, *, renew: bool = False) -> None:
        """Wake the sleepers and cancel the registered tasks of ``servers`` (all by default).

        With ``renew``, a sleeper that comes later for the same server waits on a new
        event; otherwise it is woken at once, as the instance drains.
        """
        for server in list(self._events):
            if servers is None or server in servers:
                event = self._events.pop(server) if renew else self._events[server]
                event.set()
        for task, server in list(self._tasks.items()):
            if servers is None or server in servers:
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
