"""Shared unit-test fixtures: cheap bcrypt hashes for made-up users, and the app in process."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.harness import Harness
from tests.support.users import cheap_users

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="session")
def users() -> dict[str, bytes]:
    """Two users, alice/wonderland and bob/builder, hashed as htpasswd -B would."""
    return cheap_users(alice="wonderland", bob="builder")


@pytest.fixture
def harness(tmp_path: Path, users: dict[str, bytes]) -> Iterator[Harness]:
    """An app with default settings."""
    made = Harness(tmp_path, users)
    yield made
    made.close()
