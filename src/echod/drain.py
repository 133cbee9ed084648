"""Drain: how a worker's long requests learn that the instance is shutting down.

WebSockets, SSE streams and delayed answers last longer than a request should once
shutdown has begun. While any of them runs, one task per worker looks at the shared
ready byte a few times a second; when the supervisor drains the instance, delays and
streams waiting in :meth:`Drain.sleep` wake at once, and the connections registered
with :meth:`Drain.cancelling` are cancelled, each with the reason ``"shutdown"``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["POLL", "SHUTDOWN", "Drain"]

#: Seconds between two looks at the ready byte while long requests run.
POLL = 0.2
#: The reason a drained connection's task is cancelled with.
SHUTDOWN = "shutdown"


class Drain:
    """One worker's view of the drain: sleeps that end early, tasks that get cancelled."""

    def __init__(self, is_ready: Callable[[], bool]) -> None:
        """Watch ``is_ready``, the shared ready byte."""
        self._is_ready = is_ready
        self._event: asyncio.Event | None = None
        self._sleepers = 0
        self._tasks: set[asyncio.Task[object]] = set()
        self._watcher: asyncio.Future[None] | None = None

    @property
    def draining(self) -> bool:
        """Whether the instance is shutting down."""
        return not self._is_ready()

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

    @property
    def tasks(self) -> int:
        """How many tasks would be cancelled by a drain now."""
        return len(self._tasks)

    def _watch(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        # One look at the shared ready byte a few times a second serves every waiter.
        while self._sleepers or self._tasks:
            if not self._is_ready():
                if self._event is not None:
                    self._event.set()
                for task in list(self._tasks):
                    task.cancel(SHUTDOWN)
                return
            await asyncio.sleep(POLL)
