"""Drain: sleeps and tasks that end once the instance drains, or once the worker stops."""

from __future__ import annotations

import asyncio
import time

import pytest

from echod.http.drain import CLOSE_GRACE, CLOSE_WAIT, POLL, SHUTDOWN, Drain
from tests.support.harness import FakeHeaders, FakeScope, MakeHarness
from tests.support.users import ALICE

#: A sleep far longer than any test may last: ending well before it means the drain ended it.
LONG = 30.0
#: How long a drain may take to be noticed, with room for a slow machine.
NOTICED = 2.0


class Ready:
    """The shared ready byte: true until the test drains, counting how often it is read."""

    def __init__(self, ready: bool = True) -> None:
        """Start ready, or already draining."""
        self.ready = ready
        self.looks = 0

    def __call__(self) -> bool:
        """Whether the instance is ready; each call is one look."""
        self.looks += 1
        return self.ready

    def drain(self) -> None:
        """The supervisor drains the instance."""
        self.ready = False


class TestDraining:
    def test_draining_is_the_opposite_of_ready(self) -> None:
        """draining reads the ready byte each time."""
        ready = Ready()
        drain = Drain(ready)
        assert not drain.draining
        ready.drain()
        assert drain.draining


class TestSleep:
    def test_a_sleep_while_ready_lasts_its_time_and_returns_false(self) -> None:
        """Nothing drains: the whole time passes and the sleep says it did not drain."""

        async def scenario() -> tuple[bool, float]:
            drain = Drain(Ready())
            began = time.monotonic()
            drained = await drain.sleep(0.3)
            return drained, time.monotonic() - began

        drained, took = asyncio.run(scenario())
        assert drained is False
        assert 0.25 <= took < NOTICED

    def test_a_drain_ends_a_long_sleep_early_and_returns_true(self) -> None:
        """The ready byte turning false wakes a sleeper long before its time."""

        async def scenario() -> tuple[bool, float]:
            ready = Ready()
            drain = Drain(ready)
            asyncio.get_running_loop().call_later(0.1, ready.drain)
            began = time.monotonic()
            drained = await drain.sleep(LONG)
            return drained, time.monotonic() - began

        drained, took = asyncio.run(scenario())
        assert drained is True
        assert 0.05 <= took < NOTICED

    def test_a_sleep_that_starts_while_draining_ends_at_once(self) -> None:
        """Already draining: the sleep returns true without waiting its time."""

        async def scenario() -> tuple[bool, float]:
            drain = Drain(Ready(ready=False))
            began = time.monotonic()
            drained = await drain.sleep(LONG)
            return drained, time.monotonic() - began

        drained, took = asyncio.run(scenario())
        assert drained is True
        assert took < NOTICED

    def test_every_sleeper_wakes_on_one_drain(self) -> None:
        """Many sleepers of one worker all wake together."""

        async def scenario() -> tuple[list[bool], float]:
            ready = Ready()
            drain = Drain(ready)
            asyncio.get_running_loop().call_later(0.1, ready.drain)
            began = time.monotonic()
            drained = await asyncio.gather(*(drain.sleep(LONG) for _ in range(20)))
            return drained, time.monotonic() - began

        drained, took = asyncio.run(scenario())
        assert drained == [True] * 20
        assert took < NOTICED

    def test_one_watcher_serves_every_sleeper(self) -> None:
        """The ready byte is read a few times a second in all, not once per sleeper."""

        async def scenario() -> int:
            ready = Ready()
            drain = Drain(ready)
            await asyncio.gather(*(drain.sleep(0.5) for _ in range(50)))
            return ready.looks

        looks = asyncio.run(scenario())
        # 0.5 s at one look every POLL seconds is a handful; one watcher per sleeper is 50+.
        assert 1 <= looks <= 15

    def test_the_watcher_stops_when_nobody_waits(self) -> None:
        """Once every sleep is over, the ready byte is no longer read."""

        async def scenario() -> tuple[int, int]:
            ready = Ready()
            drain = Drain(ready)
            await drain.sleep(0.05)
            await asyncio.sleep(POLL * 2)  # the watcher's last look
            settled = ready.looks
            await asyncio.sleep(POLL * 3)
            return settled, ready.looks

        settled, later = asyncio.run(scenario())
        assert later == settled

    def test_sleeps_after_a_short_one_still_notice_a_drain(self) -> None:
        """A new sleep after the watcher has stopped starts it again."""

        async def scenario() -> tuple[bool, bool, float]:
            ready = Ready()
            drain = Drain(ready)
            first = await drain.sleep(0.05)
            await asyncio.sleep(POLL * 2)
            asyncio.get_running_loop().call_later(0.1, ready.drain)
            began = time.monotonic()
            second = await drain.sleep(LONG)
            return first, second, time.monotonic() - began

        first, second, took = asyncio.run(scenario())
        assert (first, second) == (False, True)
        assert took < NOTICED


class TestCancelling:
    def test_no_tasks_at_first(self) -> None:
        """A new drain has nothing to cancel."""
        assert len(Drain(Ready())._tasks) == 0

    def test_a_registered_task_is_cancelled_with_shutdown_on_drain(self) -> None:
        """The task sees CancelledError("shutdown") soon after the ready byte turns false."""

        async def scenario() -> tuple[int, int, tuple[object, ...], bool, float, int]:
            ready = Ready()
            drain = Drain(ready)
            reasons: list[tuple[object, ...]] = []

            async def connection() -> None:
                try:
                    await asyncio.sleep(LONG)
                except asyncio.CancelledError as cancelled:
                    reasons.append(cancelled.args)
                    raise

            task: asyncio.Task[object] = asyncio.ensure_future(connection())
            began = time.monotonic()
            with drain.cancelling(task) as count:
                during = len(drain._tasks)
                asyncio.get_running_loop().call_later(0.1, ready.drain)
                with pytest.raises(asyncio.CancelledError):
                    await task
            took = time.monotonic() - began
            return count, during, reasons[0], task.cancelled(), took, len(drain._tasks)

        count, during, reason, cancelled, took, after = asyncio.run(scenario())
        assert (count, during) == (1, 1)
        assert reason == (SHUTDOWN,)
        assert SHUTDOWN == "shutdown"
        assert cancelled
        assert took < NOTICED
        assert after == 0

    def test_the_count_includes_every_task_registered(self) -> None:
        """Each registration yields how many tasks the worker has, itself included."""

        async def scenario() -> tuple[list[int], list[int]]:
            drain = Drain(Ready())
            tasks: list[asyncio.Task[object]] = [
                asyncio.ensure_future(asyncio.sleep(LONG)) for _ in range(3)
            ]
            counts: list[int] = []
            sizes: list[int] = []
            with drain.cancelling(tasks[0]) as first:
                counts.append(first)
                with drain.cancelling(tasks[1]) as second:
                    counts.append(second)
                    with drain.cancelling(tasks[2]) as third:
                        counts.append(third)
                        sizes.append(len(drain._tasks))
                    sizes.append(len(drain._tasks))
                sizes.append(len(drain._tasks))
            sizes.append(len(drain._tasks))
            for task in tasks:
                task.cancel()
            return counts, sizes

        counts, sizes = asyncio.run(scenario())
        assert counts == [1, 2, 3]
        assert sizes == [3, 2, 1, 0]

    def test_a_task_is_unregistered_even_when_the_block_raises(self) -> None:
        """Leaving the block by an exception still forgets the task."""

        async def scenario() -> int:
            drain = Drain(Ready())
            task: asyncio.Task[object] = asyncio.ensure_future(asyncio.sleep(LONG))
            with pytest.raises(RuntimeError), drain.cancelling(task):
                raise RuntimeError
            task.cancel()
            return len(drain._tasks)

        assert asyncio.run(scenario()) == 0

    def test_a_task_is_left_alone_while_ready(self) -> None:
        """No drain: the task runs to its end and is not cancelled."""

        async def scenario() -> tuple[object, bool]:
            drain = Drain(Ready())

            async def connection() -> str:
                await asyncio.sleep(POLL * 2)
                return "done"

            task: asyncio.Task[object] = asyncio.ensure_future(connection())
            with drain.cancelling(task):
                result = await task
            return result, task.cancelled()

        assert asyncio.run(scenario()) == ("done", False)

    def test_a_task_unregistered_before_the_drain_is_not_cancelled(self) -> None:
        """Only the tasks registered when the drain is seen are cancelled."""

        async def scenario() -> tuple[bool, bool]:
            ready = Ready()
            drain = Drain(ready)
            task: asyncio.Task[object] = asyncio.ensure_future(asyncio.sleep(LONG))
            with drain.cancelling(task):
                await asyncio.sleep(0.05)
            ready.drain()
            await asyncio.sleep(POLL * 3)
            cancelled = task.cancelled() or task.done()
            task.cancel()
            return cancelled, drain.draining

        cancelled, draining = asyncio.run(scenario())
        assert draining
        assert not cancelled

    def test_a_drain_wakes_sleepers_and_cancels_tasks_together(self) -> None:
        """One drain ends the delays and cancels the connections of the worker."""

        async def scenario() -> tuple[bool, bool, float]:
            ready = Ready()
            drain = Drain(ready)
            task: asyncio.Task[object] = asyncio.ensure_future(asyncio.sleep(LONG))
            asyncio.get_running_loop().call_later(0.1, ready.drain)
            began = time.monotonic()
            with drain.cancelling(task):
                drained = await drain.sleep(LONG)
                await asyncio.wait([task], timeout=NOTICED)
            return drained, task.cancelled(), time.monotonic() - began

        drained, cancelled, took = asyncio.run(scenario())
        assert drained
        assert cancelled
        assert took < NOTICED


class FakeSocket:
    """An RSGI WebSocket protocol that records how a handshake was refused."""

    def __init__(self) -> None:
        """Nothing refused yet."""
        self.closed: list[int | None] = []

    def close(self, status: int | None) -> None:
        """Record the bare status of a refusal."""
        self.closed.append(status)


async def _open_socket(drain: Drain, closed: list[tuple[object, ...]]) -> None:
    """A WebSocket that stays open until echod ends it, then records why."""
    task = asyncio.current_task()
    assert task is not None
    with drain.cancelling(task):
        try:
            await asyncio.sleep(LONG)
        except asyncio.CancelledError as cancelled:
            task.uncancel()
            closed.append(cancelled.args)


class TestStopping:
    def test_stopping_ends_sleeps_and_websockets_then_returns(self) -> None:
        """Sleepers wake, each WebSocket ends as "shutdown", then the servers may stop."""
        events: list[tuple[object, ...]] = []

        async def scenario() -> tuple[bool, bool, float]:
            drain = Drain(Ready())
            sockets = [asyncio.create_task(_open_socket(drain, events)) for _ in range(3)]
            sleeper = asyncio.create_task(drain.sleep(LONG))
            await asyncio.sleep(0)
            started = time.monotonic()
            await asyncio.wait_for(drain.stop(), 5)
            events.append(("stopped",))
            after = time.monotonic() - started
            await asyncio.gather(*sockets)
            return drain.stopping, await sleeper, after

        stopping, woke, after = asyncio.run(scenario())
        assert stopping
        assert woke, "the sleep ended early"
        assert events == [(SHUTDOWN,)] * 3 + [("stopped",)]
        assert CLOSE_GRACE <= after < CLOSE_GRACE + CLOSE_WAIT

    def test_a_stopping_worker_is_draining_while_the_instance_is_ready(self) -> None:
        """A reload stops old workers while the instance stays ready."""
        drain = Drain(Ready())
        drain.stopping = True
        assert drain.draining

    def test_a_stopping_worker_s_answers_close_their_connections(
        self, make_harness: MakeHarness
    ) -> None:
        """Echoes, problems and probes say Connection: close; before the stop, none does."""
        harness = make_harness()
        assert harness.authed(body=b"{}").response.header("connection") is None
        harness.app._drain.stopping = True
        answers = [
            harness.authed(body=b"{}"),
            harness.authed("POST", "/api/raw", b"x"),
            harness.authed(body=b"[]"),
            harness.request("GET", "/health"),
            harness.request("GET", "/metrics"),
        ]
        assert [answer.response.status for answer in answers] == [200, 200, 400, 200, 200]
        assert {answer.response.header("connection") for answer in answers} == {"close"}

    def test_a_stopping_worker_refuses_new_websockets(self, make_harness: MakeHarness) -> None:
        """A handshake that reaches a worker in its last moments gets 503, not a dropped socket."""
        harness = make_harness()
        harness.app._drain.stopping = True
        headers = FakeHeaders(host="echod.test", authorization=ALICE)
        scope = FakeScope("GET", "/api/raw", headers, proto="ws")
        refused = FakeSocket()
        asyncio.run(harness.app.__rsgi__(scope, refused))  # type: ignore[arg-type]
        assert refused.closed == [503]
        [line] = harness.log_lines()
        assert (line["status"], line["detail"]) == (
            503,
            "this worker is stopping (a reload replaces it)",
        )
