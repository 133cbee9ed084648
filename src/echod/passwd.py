"""Passwd: ``echod passwd FILE USER`` adds a user to an htpasswd file, or changes a password.

The password is asked for twice, without echo, when stdin is a terminal; otherwise one
line is read from stdin, so that scripts can pipe it in. The entry is a bcrypt hash of
cost :data:`COST`, as ``htpasswd -B -C 10`` makes it. Other lines and comments stay as
they are, a new file is made readable by its owner only, and the file is replaced in
one step, never left half written. A file that echod could not load afterwards is not
written at all.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

import bcrypt

from echod.http.auth import BCRYPT_MAX_PASSWORD
from echod.instance.users import parse_users
from echod.settings.config import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["COST", "passwd"]

#: bcrypt's cost: 2**10 rounds, about 50 ms a check, once per user and worker.
COST = 10
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def passwd(
    argv: Sequence[str],
    *,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
    ask: Callable[[str], str] = getpass.getpass,
) -> int:
    """Run ``echod passwd`` with ``argv`` (after the word passwd); return the exit status.

    Exit status: 0 when the file was written, 2 for a bad file, user or password, 1 when
    the file cannot be written.
    """
    stdin = sys.stdin if stdin is None else stdin
    stderr = sys.stderr if stderr is None else stderr
    parser = _Parser(
        prog="echod passwd",
        description="Add USER to the htpasswd FILE (made if missing), or change USER's "
        "password, as a bcrypt hash. The password is asked for twice on a terminal, and "
        "read as one line from stdin otherwise.",
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="the htpasswd file")
    parser.add_argument("user", metavar="USER", help="the user name")
    try:
        args = parser.parse_args(argv)
        _check_user(args.user)
        text = _read(args.file)
        if text.strip():  # a file echod cannot load now is not edited blindly
            parse_users(text, f"users file {args.file}")
        password = _password(stdin, ask)
        updated, added = _with_user(text, args.user, password)
        parse_users(updated, f"users file {args.file}")
    except ConfigError as error:
        stderr.write(f"echod passwd: error: {error}\n")
        return EXIT_USAGE
    except SystemExit as done:  # --help
        return int(done.code or 0)
    try:
        _replace(args.file, updated)
    except OSError as error:
        stderr.write(f"echod passwd: error: cannot write {args.file}: {error}\n")
        return EXIT_FAILURE
    what = f"added {args.user} to" if added else f"changed the password of {args.user} in"
    stderr.write(f"echod passwd: {what} {args.file}\n")
    return EXIT_OK


def _check_user(user: str) -> None:
    if not user or ":" in user or user != user.strip() or not user.isprintable():
        raise ConfigError(
            f"user {user!r}: a user name is printable, has no colon, and no space at its ends"
        )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"users file {path}: cannot be read: {error}") from None


def _password(stdin: TextIO, ask: Callable[[str], str]) -> bytes:
    if stdin.isatty():
        first = ask("password: ")
        if ask("again: ") != first:
            raise ConfigError("the two passwords differ")
    else:
        first = stdin.readline().removesuffix("\n").removesuffix("\r")
    password = first.encode()
    if not password:
        raise ConfigError("the password is empty")
    if len(password) > BCRYPT_MAX_PASSWORD or b"\0" in password:
        raise ConfigError(
            f"bcrypt takes passwords of at most {BCRYPT_MAX_PASSWORD} bytes, without NUL"
        )
    return password


def _with_user(text: str, user: str, password: bytes) -> tuple[str, bool]:
    """``text`` with ``user``'s line replaced, or added; and whether it was added."""
    entry = f"{user}:{bcrypt.hashpw(password, bcrypt.gensalt(COST)).decode()}"
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.strip().partition(":")[0] == user and not line.lstrip().startswith("#"):
            lines[number] = entry
            return "\n".join(lines) + "\n", False
    return "\n".join([*lines, entry]) + "\n", True


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` in one step, keeping an existing file's mode."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        Path(temporary).chmod(mode)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
