"""Users: the htpasswd files of bcrypt hashes (``htpasswd -B``) that echod's users come from.

A line is ``user:hash``, where the hash is bcrypt's (``$2a$``, ``$2b$`` or ``$2y$``);
blank lines and ``#`` comments are skipped. The bundled demo file holds four users whose
passwords are public, for trying echod out.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from echod.settings.config import ConfigError

__all__ = ["BCRYPT_HASH_LENGTH", "demo_users_file", "parse_users"]

#: The length of a bcrypt hash in its ``$2b$`` text form.
BCRYPT_HASH_LENGTH = 60
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


def demo_users_file() -> Path:
    """Return the bundled htpasswd file of the four demo users."""
    return Path(str(resources.files("echod") / "demo-users.htpasswd"))


def parse_users(text: str, source: str) -> dict[str, bytes]:
    """Parse the text of an htpasswd file of bcrypt hashes; ``source`` names it in errors.

    Raises:
        ConfigError: the text has no users, repeats a user, or holds a line that is not
            ``user:bcrypt-hash``; the message names ``source`` and the line.
    """
    users: dict[str, bytes] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, colon, hashed = line.partition(":")
        where = f"{source}, line {number}"
        if not colon or not user:
            raise ConfigError(f"{where}: expected user:hash")
        if not hashed.startswith(_BCRYPT_PREFIXES) or len(hashed) != BCRYPT_HASH_LENGTH:
            raise ConfigError(
                f"{where}: the hash of {user!r} is not bcrypt; make it with echod passwd"
            )
        if user in users:
            raise ConfigError(f"{where}: user {user!r} appears twice")
        users[user] = hashed.encode()
    if not users:
        raise ConfigError(f"{source}: no users")
    return users
