"""Integration fixtures: echod processes that are always stopped, and clients for them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.processes import Echod
from tests.support.users import AUTH

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def make_echod() -> Iterator[Any]:
    """Start echod processes with given arguments; every one is stopped after the test."""
    started: list[Echod] = []

    def make(*args: str, start: bool = True, **kwargs: Any) -> Echod:
        echod = Echod(*args, **kwargs)
        started.append(echod)
        return echod.start() if start else echod

    yield make
    for echod in started:
        echod.close()


@pytest.fixture(scope="module")
def echod() -> Iterator[Echod]:
    """One echod with HTTPS, shared by the tests of a module."""
    server = Echod(tls=True)
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def client(echod: Echod) -> Iterator[httpx.Client]:
    """An HTTP client for the shared echod, authenticated as the demo user."""
    with httpx.Client(base_url=echod.url, auth=AUTH, timeout=10) as made:
        yield made


@pytest.fixture(scope="module")
def every_transport() -> Iterator[Echod]:
    """One echod that every transport reaches: HTTPS, and h2c on the plain port (--h2c)."""
    server = Echod("--h2c", tls=True)
    try:
        yield server.start()
    finally:
        server.close()
