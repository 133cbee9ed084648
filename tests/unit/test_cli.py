"""CLI: exit statuses and messages for everything that stops echod before it serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from echod.cli import EXIT_CONFIG, main
from echod.version import __version__

if TYPE_CHECKING:
    from pathlib import Path


class TestMain:
    def test_version_exits_zero(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--version prints the version."""
        assert main(["--version"], {}) == 0
        assert capsys.readouterr().out.strip() == f"echod {__version__}"

    def test_help_lists_every_variable_rule(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help explains that each flag has an ECHOD_* variable."""
        assert main(["--help"], {}) == 0
        out = capsys.readouterr().out
        assert "ECHOD_MAX_BODY_BYTES" in out
        assert "--shutdown-timeout" in out

    @pytest.mark.parametrize(
        ("argv", "environ", "message"),
        [
            (["--log-level", "loud"], {}, "--log-level='loud'"),
            ([], {"ECHOD_LOG_LEVEL": "loud"}, "ECHOD_LOG_LEVEL='loud'"),
            (["--port", "x"], {}, "--port='x'"),
            (["--nope"], {}, "unrecognized arguments: --nope"),
        ],
        ids=["flag", "variable", "port", "unknown"],
    )
    def test_bad_settings_exit_2_naming_them(
        self,
        capsys: pytest.CaptureFixture[str],
        argv: list[str],
        environ: dict[str, str],
        message: str,
    ) -> None:
        """Exit 2 and a message on stderr that names the setting and the value."""
        assert main(argv, environ) == EXIT_CONFIG == 2
        err = capsys.readouterr().err
        assert err.startswith("echod: error: ")
        assert message in err

    def test_a_bad_users_file_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An htpasswd file without bcrypt hashes is a setting error."""
        users = tmp_path / "users"
        users.write_text("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
        assert main(["--users-file", str(users)], {}) == 2
        assert "line 1: the hash of 'alice' is not bcrypt" in capsys.readouterr().err
