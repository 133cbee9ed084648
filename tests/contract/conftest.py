"""Contract fixtures: a live echod on free loopback ports."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.integration.support import Echod

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def live_echod() -> Iterator[Echod]:
    """One echod on free loopback ports (plain HTTP), stopped after the module."""
    server = Echod().start()
    yield server
    server.close()
