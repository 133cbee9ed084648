"""Connections: a stopping worker ends its connections cleanly before granian stops it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import TYPE_CHECKING

from echod.connections import CLOSE_GRACE, CLOSE_WAIT, Connections
from tests.support.harness import FakeHeaders, FakeScope, Harness
from tests.support.users import ALICE, cheap_users

if TYPE_CHECKING:
    from pathlib import Path


class FakeSocket:
    """An RSGI WebSocket protocol that records how a handshake was refused."""

    def __init__(self) -> None:
        """Nothing refused yet."""
        self.closed: list[int | None] = []

    def close(self, status: int | None) -> None:
        """Record the bare status of a refusal."""
        self.closed.append(status)


async def _open(connections: Connections, closed: list[tuple[object, ...]]) -> None:
    """A WebSocket that stays open until echod ends it, then records why."""
    task = asyncio.current_task()
    assert task is not None
    connections.add(task)
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError as cancelled:
        task.uncancel()
        closed.append(cancelled.args)
    finally:
        connections.discard(task)


class TestStopping:
    def test_sigterm_closes_every_websocket_then_hands_over(self) -> None:
        """Each WebSocket ends as "shutdown"; granian may stop the worker after the grace."""
        events: list[tuple[object, ...]] = []

        async def scenario() -> tuple[bool, float]:
            loop = asyncio.get_running_loop()
            connections = Connections(lambda: True)
            sockets = [asyncio.create_task(_open(connections, events)) for _ in range(3)]
            await asyncio.sleep(0)
            handed_over = asyncio.Event()

            def hand_over() -> None:
                events.append(("handed over",))
                handed_over.set()

            previous = signal.getsignal(signal.SIGTERM)
            connections.close_before_stopping(loop, hand_over)
            try:
                started = time.monotonic()
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.wait_for(handed_over.wait(), 5)
                after = time.monotonic() - started
            finally:
                loop.remove_signal_handler(signal.SIGTERM)
                signal.signal(signal.SIGTERM, previous)
            await asyncio.gather(*sockets)
            return connections.stopping, after

        stopping, after = asyncio.run(scenario())
        assert stopping
        assert events == [("shutdown",)] * 3 + [("handed over",)]
        assert CLOSE_GRACE <= after < CLOSE_GRACE + CLOSE_WAIT

    def test_a_stopping_worker_s_answers_close_their_connections(self, tmp_path: Path) -> None:
        """Echoes, problems and probes say Connection: close; before the stop, none does."""
        harness = Harness(tmp_path, cheap_users(alice="wonderland"))
        try:
            assert harness.authed(body=b"{}").response.header("connection") is None
            harness.app._connections.stopping = True
            answers = [
                harness.authed(body=b"{}"),
                harness.authed("POST", "/api/raw", b"x"),
                harness.authed(body=b"[]"),
                harness.request("GET", "/health"),
                harness.request("GET", "/metrics"),
            ]
            assert [answer.response.status for answer in answers] == [200, 200, 400, 200, 200]
            assert {answer.response.header("connection") for answer in answers} == {"close"}
        finally:
            harness.close()

    def test_a_stopping_worker_refuses_new_websockets(self, tmp_path: Path) -> None:
        """A handshake that reaches a worker in its last moments gets 503, not a dropped socket."""
        harness = Harness(tmp_path, cheap_users(alice="wonderland"))
        try:
            sockets = harness.app._websockets
            sockets._connections.stopping = True
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
        finally:
            harness.close()
