"""Soak helpers: deadlines for every phase of a scenario, and a load that always stops.

A soak scenario never hangs. Each phase runs under a deadline of its own, and a phase
that overruns fails the test with a message naming it. The load's clients stop at a
stop event set in their own event loop, or at their own deadline, whichever is first,
and a client whose connection broke starts again on a fresh one.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import httpx
import pytest

from tests.support.users import AUTH

if TYPE_CHECKING:
    import ssl
    from collections.abc import Awaitable
    from threading import Thread

T = TypeVar("T")

#: Seconds a single request of the load may take before it counts as failed.
REQUEST_TIMEOUT = 10.0
#: Seconds beyond its planned length that a phase may overrun before the test fails.
SLACK = 30.0


async def within(seconds: float, phase: str, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``, cancelling it and failing the test after ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        pytest.fail(f"{phase} overran its deadline of {seconds:g} s")


def join(thread: Thread, seconds: float, phase: str) -> None:
    """Wait for ``thread``; fail the test, naming ``phase``, if it is still running."""
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{phase} overran its deadline of {seconds:g} s")


@dataclass
class Load:
    """Keep-alive clients posting to /api/echo until stopped; what each request got.

    Every client has a connection of its own. A request that fails at the transport
    (a worker died under it, say) is recorded by the error's name, and the client goes
    on with a new connection, so no broken connection is ever reused. The requests for
    which a new connection was opened are in :attr:`connected`; the others went on a
    kept-alive one. ``verify`` is what HTTPS clients trust.
    """

    url: str
    clients: int
    verify: ssl.SSLContext | bool = True
    #: What each request id starts with, so that two loads' ids never meet.
    name: str = "soak"
    answers: dict[str, int | str] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    connected: set[str] = field(default_factory=set)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, seconds: float) -> None:
        """Send until :attr:`stop` is set from this loop, or for at most ``seconds``."""
        deadline = time.monotonic() + seconds
        await within(
            seconds + SLACK,
            "the load",
            asyncio.gather(*(self._client(n, deadline) for n in range(self.clients))),
        )

    async def _client(self, number: int, deadline: float) -> None:
        n = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            async with httpx.AsyncClient(
                base_url=self.url, auth=AUTH, timeout=REQUEST_TIMEOUT, verify=self.verify
            ) as client:
                while not self.stop.is_set() and time.monotonic() < deadline:
                    rid = f"{self.name}-{number}-{n}"
                    n += 1
                    self.sent.append(rid)
                    self.sent_at[rid] = time.monotonic()
                    try:
                        response = await client.post(
                            "/api/echo",
                            content=b'{"soak": true}',
                            headers={"x-request-id": rid},
                            extensions={"trace": partial(self._trace, rid)},
                        )
                    except httpx.HTTPError as error:
                        self.answers[rid] = type(error).__name__
                        break  # the connection may be broken: start on a new one
                    self.answers[rid] = response.status_code

    async def _trace(self, rid: str, event: str, _info: object) -> None:
        """httpcore's trace of one request: note it when a connection is opened for it."""
        if event.startswith("connection.connect_tcp."):
            self.connected.add(rid)

    def failed(self) -> dict[str, int | str]:
        """The requests that did not get a 200, with what they got instead."""
        return {rid: answer for rid, answer in self.answers.items() if answer != 200}
