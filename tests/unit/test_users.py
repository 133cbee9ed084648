"""Users: htpasswd files of bcrypt hashes, and the bundled demo users."""

from __future__ import annotations

from typing import TYPE_CHECKING

import bcrypt
import pytest

from echod.instance.users import demo_users_file, parse_users
from echod.settings.config import ConfigError

if TYPE_CHECKING:
    from pathlib import Path


def read_users(path: Path) -> dict[str, bytes]:
    """The users of the htpasswd file at ``path``, as echod reads them."""
    return parse_users(path.read_text(encoding="utf-8"), f"users file {path}")


class TestParseUsers:
    def test_demo_file_holds_the_four_demo_users(self) -> None:
        """The bundled file has the seed's users, hashed, and their passwords match."""
        users = read_users(demo_users_file())
        assert sorted(users) == ["dextroussheep", "luckyslug", "pettyrabbit", "remarkablebob"]
        assert all(hashed.startswith(b"$2y$") for hashed in users.values())
        assert b"2rFtex" not in demo_users_file().read_bytes()
        assert bcrypt.checkpw(b"2rFtex", users["remarkablebob"])
        assert bcrypt.checkpw(b"2BpgwH", users["pettyrabbit"])

    def test_comments_and_blank_lines_are_skipped(
        self, tmp_path: Path, users: dict[str, bytes]
    ) -> None:
        """htpasswd files may carry comments."""
        path = tmp_path / "users"
        path.write_text(f"# comment\n\nalice:{users['alice'].decode()}\n")
        assert read_users(path) == {"alice": users["alice"]}

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("", "no users"),
            ("# only a comment\n", "no users"),
            ("alice\n", "line 1: expected user:hash"),
            (":$2y$" + "x" * 56 + "\n", "line 1: expected user:hash"),
            ("alice:{SHA}abc\n", "line 1: the hash of 'alice' is not bcrypt"),
            ("alice:plain\n", "line 1: the hash of 'alice' is not bcrypt"),
            ("a:$2y$" + "x" * 56 + "\na:$2y$" + "y" * 56 + "\n", "line 2: user 'a' appears twice"),
        ],
        ids=["empty", "comment-only", "no-colon", "no-user", "sha1", "plain", "duplicate"],
    )
    def test_bad_files_name_the_file_and_line(
        self, tmp_path: Path, content: str, message: str
    ) -> None:
        """A bad users file stops echod with a message pointing at the problem."""
        path = tmp_path / "users"
        path.write_text(content)
        with pytest.raises(ConfigError, match=f"users file {path}.*{message}"):
            read_users(path)
