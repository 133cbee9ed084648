"""Shared unit-test fixtures: cheap bcrypt hashes for made-up users, and the app in process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.support.harness import Harness, MakeHarness
from tests.support.users import cheap_users

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="session")
def users() -> dict[str, bytes]:
    """Two users, alice/wonderland and bob/builder, hashed as htpasswd -B would."""
    return cheap_users(alice="wonderland", bob="builder")


@pytest.fixture
def make_harness(tmp_path: Path, users: dict[str, bytes]) -> Iterator[MakeHarness]:
    """Makes apps with settings of the test's choosing; each is closed when the test ends.

    Closed whether the test passed or not, so that a failed assertion leaks nothing.
    """
    made: list[Harness] = []

    def make(**settings: Any) -> Harness:
        made.append(Harness(tmp_path / f"harness-{len(made)}", users, **settings))
        return made[-1]

    yield make
    for each in made:
        each.close()


@pytest.fixture
def harness(make_harness: MakeHarness) -> Harness:
    """An app with default settings."""
    return make_harness()
