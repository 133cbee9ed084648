"""echod passwd: users added and changed in htpasswd files that echod then loads."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import bcrypt
import pytest

from echod.cli import main
from echod.instance.users import parse_users
from echod.passwd import COST, passwd

if TYPE_CHECKING:
    from pathlib import Path


class Terminal(io.StringIO):
    """A stdin that is a terminal: the password is asked for instead of read."""

    def isatty(self) -> bool:
        """Say it is a terminal."""
        return True


def run(path: Path, user: str, line: str = "s3cret\n") -> tuple[int, str]:
    """Run echod passwd with ``line`` on stdin; return the exit status and stderr."""
    stderr = io.StringIO()
    status = passwd([str(path), user], stdin=io.StringIO(line), stderr=stderr)
    return status, stderr.getvalue()


def checks(path: Path, user: str, password: str) -> bool:
    """Whether ``user`` and ``password`` match the file's entry, as echod checks them."""
    return bcrypt.checkpw(password.encode(), parse_users(path.read_text(), str(path))[user])


class TestPasswd:
    def test_a_new_file_is_made_private_with_the_user(self, tmp_path: Path) -> None:
        """No file yet: it is made, readable by its owner only, and echod loads it."""
        path = tmp_path / "users.htpasswd"
        status, said = run(path, "alice")
        assert status == 0
        assert said == f"echod passwd: added alice to {path}\n"
        assert checks(path, "alice", "s3cret")
        assert path.stat().st_mode & 0o777 == 0o600
        assert parse_users(path.read_text(), str(path))["alice"].startswith(f"$2b${COST}$".encode())

    def test_a_password_is_changed_in_place_and_the_rest_kept(self, tmp_path: Path) -> None:
        """Comments, other users and their order stay; only the user's line changes."""
        path = tmp_path / "users.htpasswd"
        run(path, "alice")
        run(path, "bob", "builder\n")
        path.write_text("# team\n" + path.read_text())
        status, said = run(path, "alice", "n3w\n")
        assert status == 0
        assert "changed the password of alice" in said
        lines = path.read_text().splitlines()
        assert lines[0] == "# team"
        assert [line.split(":")[0] for line in lines[1:]] == ["alice", "bob"]
        assert checks(path, "alice", "n3w")
        assert checks(path, "bob", "builder")

    def test_the_mode_of_an_existing_file_is_kept(self, tmp_path: Path) -> None:
        """A file a group may read stays so after the change."""
        path = tmp_path / "users.htpasswd"
        run(path, "alice")
        path.chmod(0o640)
        run(path, "alice", "again\n")
        assert path.stat().st_mode & 0o777 == 0o640

    def test_a_terminal_is_asked_twice(self, tmp_path: Path) -> None:
        """On a terminal the password is typed twice, unseen; both must agree."""
        path = tmp_path / "users.htpasswd"
        answers = iter(["one", "one"])
        status = passwd(
            [str(path), "alice"],
            stdin=Terminal(),
            stderr=io.StringIO(),
            ask=lambda _: next(answers),
        )
        assert status == 0
        assert checks(path, "alice", "one")
        differ = iter(["one", "two"])
        stderr = io.StringIO()
        status = passwd(
            [str(path), "bob"], stdin=Terminal(), stderr=stderr, ask=lambda _: next(differ)
        )
        assert status == 2
        assert "the two passwords differ" in stderr.getvalue()

    @pytest.mark.parametrize(
        ("user", "line", "message"),
        [
            ("a:b", "x\n", "has no colon"),
            ("", "x\n", "a user name is printable"),
            (" alice", "x\n", "no space at its ends"),
            ("alice", "\n", "the password is empty"),
            ("alice", "x" * 73 + "\n", "at most 72 bytes"),
            ("alice", "a\0b\n", "without NUL"),
        ],
        ids=["colon", "empty-user", "space", "empty-password", "over-72-bytes", "nul"],
    )
    def test_what_echod_could_not_use_is_refused_and_nothing_written(
        self, tmp_path: Path, user: str, line: str, message: str
    ) -> None:
        """Exit 2, the reason on stderr, and the file as it was."""
        path = tmp_path / "users.htpasswd"
        run(path, "carol")
        before = path.read_bytes()
        status, said = run(path, user, line)
        assert status == 2
        assert message in said
        assert path.read_bytes() == before

    def test_a_file_echod_cannot_load_is_not_edited(self, tmp_path: Path) -> None:
        """A broken file is reported, not made worse."""
        path = tmp_path / "users.htpasswd"
        path.write_text("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
        status, said = run(path, "bob")
        assert status == 2
        assert "line 1" in said
        assert path.read_text() == "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"

    def test_an_unwritable_place_exits_1(self, tmp_path: Path) -> None:
        """A folder that does not exist cannot take the file."""
        status, said = run(tmp_path / "missing" / "users.htpasswd", "alice")
        assert status == 1
        assert "cannot write" in said

    def test_echod_passwd_is_the_subcommand(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The echod command runs it as its passwd subcommand."""
        path = tmp_path / "users.htpasswd"
        monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
        assert main(["passwd", str(path), "alice"], {}) == 0
        assert checks(path, "alice", "s3cret")
