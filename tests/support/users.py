"""The users the tests authenticate as: the bundled demo user, and made-up cheap ones."""

from __future__ import annotations

import base64

import bcrypt

#: A demo user of the bundled htpasswd file, which a started echod accepts.
USER, PASSWORD = "remarkablebob", "2rFtex"
AUTH = (USER, PASSWORD)
AUTH_HEADER = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

#: The made-up user of the in-process app (password "wonderland").
ALICE = "Basic " + base64.b64encode(b"alice:wonderland").decode()
# The lowest cost bcrypt allows keeps the tests fast; the logic is the same.
CHEAP = 4


def basic(user: str, password: str) -> str:
    """An ``Authorization`` header of the Basic scheme."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def cheap_users(**passwords: str) -> dict[str, bytes]:
    """Users with their passwords, hashed as htpasswd -B would, at the lowest cost."""
    return {
        user: bcrypt.hashpw(password.encode(), bcrypt.gensalt(CHEAP))
        for user, password in passwords.items()
    }
