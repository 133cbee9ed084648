"""Healthcheck: where ``echod healthcheck`` asks, and what it does with bad settings."""

from __future__ import annotations

import pytest

from echod import cli, healthcheck
from echod.healthcheck import ANSWER_TIMEOUT, EXIT_UNHEALTHY, probe_address
from echod.settings.config import load_settings


class TestProbeAddress:
    @pytest.mark.parametrize(
        ("host", "expected"),
        [
            ("0.0.0.0", "127.0.0.1"),
            ("::", "::1"),
            ("[::]", "::1"),
            ("127.0.0.2", "127.0.0.2"),
            ("::1", "::1"),
            ("localhost", "localhost"),
        ],
        ids=["any-ipv4", "any-ipv6", "any-ipv6-bracketed", "ipv4", "ipv6", "name"],
    )
    def test_asks_loopback_for_a_wildcard_and_the_host_otherwise(
        self, host: str, expected: str
    ) -> None:
        """A wildcard listener is asked on loopback of its family; an address as it is."""
        assert probe_address(load_settings(["--host", host], {})) == (expected, 3000)

    def test_follows_echod_port_and_the_flag_wins(self) -> None:
        """ECHOD_PORT moves the probe, as it moves echod; --port overrides it."""
        assert probe_address(load_settings([], {"ECHOD_PORT": "8080"}))[1] == 8080
        assert probe_address(load_settings(["--port", "9090"], {"ECHOD_PORT": "8080"}))[1] == 9090

    def test_the_answer_fits_in_two_seconds_with_the_interpreter_start(self) -> None:
        """The exchange's budget leaves room for Python to start within 2 s in all."""
        assert ANSWER_TIMEOUT <= 1.5


class TestMain:
    @pytest.mark.parametrize(
        ("argv", "environ", "message"),
        [
            (["--port", "x"], {}, "--port='x'"),
            ([], {"ECHOD_PORT": "70000"}, "ECHOD_PORT='70000'"),
            (["--nope"], {}, "unrecognized arguments: --nope"),
        ],
        ids=["flag", "variable", "unknown"],
    )
    def test_a_bad_setting_is_unhealthy_and_named(
        self,
        capsys: pytest.CaptureFixture[str],
        argv: list[str],
        environ: dict[str, str],
        message: str,
    ) -> None:
        """A setting echod could not run with exits 1 (not 2) and names the setting."""
        assert healthcheck.main(argv, environ) == EXIT_UNHEALTHY == 1
        err = capsys.readouterr().err
        assert err.startswith("echod healthcheck: unhealthy: ")
        assert message in err

    def test_help_names_the_subcommand(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help exits 0 and shows the usage of echod healthcheck."""
        assert healthcheck.main(["--help"], {}) == 0
        assert capsys.readouterr().out.startswith("usage: echod healthcheck ")

    def test_echod_healthcheck_is_dispatched_with_the_rest_of_the_arguments(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """echod healthcheck ... runs the healthcheck with the arguments after it."""
        assert cli.main(["healthcheck", "--port", "x"], {}) == 1
        assert "echod healthcheck: unhealthy: --port='x'" in capsys.readouterr().err

    def test_echod_help_mentions_the_subcommand(self, capsys: pytest.CaptureFixture[str]) -> None:
        """echod --help tells that echod healthcheck exists."""
        assert cli.main(["--help"], {}) == 0
        assert "'echod healthcheck'" in " ".join(capsys.readouterr().out.split())
