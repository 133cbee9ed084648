"""Waiting: the one way a test waits for something that happens in another process."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["eventually", "eventually_async"]

T = TypeVar("T")


def _fail(timeout: float, failure: str | Callable[[], str]) -> None:
    said = failure() if callable(failure) else failure
    pytest.fail(f"not within {timeout:g} s: {said}")


def eventually(
    probe: Callable[[], T],
    *,
    timeout: float,
    failure: str | Callable[[], str],
    interval: float = 0.05,
) -> T:
    """Call ``probe`` every ``interval`` seconds until it returns something true; return it.

    After ``timeout`` seconds the test fails with ``failure`` (text, or a function that
    says what was seen, called only then). ``probe`` may itself fail the test, to stop
    early (a process that exited).
    """
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        if time.monotonic() >= deadline:
            _fail(timeout, failure)
        time.sleep(interval)
    return found


async def eventually_async(
    probe: Callable[[], T],
    *,
    timeout: float,  # noqa: ASYNC109 - it bounds polling of another process, not an await
    failure: str | Callable[[], str],
    interval: float = 0.05,
) -> T:
    """:func:`eventually`, for a test that runs an event loop: the waits let it run."""
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        if time.monotonic() >= deadline:
            _fail(timeout, failure)
        await asyncio.sleep(interval)
    return found
