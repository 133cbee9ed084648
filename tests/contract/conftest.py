"""Contract fixtures: a live echod, and the app in this process with a fake protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING

import bcrypt
import pytest

from tests.support.harness import Harness
from tests.support.processes import Echod

if TYPE_CHECKING:
    from collections.abc import Iterator

# The lowest cost bcrypt allows: the in-process app checks alice's password once.
CHEAP = 4


@pytest.fixture(scope="module")
def live_echod() -> Iterator[Echod]:
    """One echod on free loopback ports (plain HTTP) with /auth/verify, stopped after the module."""
    server = Echod("--auth-verify")
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """The app as a worker builds it, logging into a pipe; alice/wonderland may use it."""
    users = {"alice": bcrypt.hashpw(b"wonderland", bcrypt.gensalt(CHEAP))}
    made = Harness(tmp_path_factory.mktemp("app"), users, auth_verify=True)
    yield made
    made.close()
