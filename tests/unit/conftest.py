"""Shared unit-test helpers: cheap bcrypt hashes for made-up users."""

from __future__ import annotations

import bcrypt
import pytest

# The lowest cost bcrypt allows keeps the unit tests fast; the logic is the same.
CHEAP = 4


@pytest.fixture(scope="session")
def users() -> dict[str, bytes]:
    """Two users, alice/wonderland and bob/builder, hashed as htpasswd -B would."""
    return {
        "alice": bcrypt.hashpw(b"wonderland", bcrypt.gensalt(CHEAP)),
        "bob": bcrypt.hashpw(b"builder", bcrypt.gensalt(CHEAP)),
    }
