"""Settings: flags, ECHOD_* variables, defaults and the errors that name them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from echod.settings.config import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_RELOAD_INTERVAL,
    DEFAULT_SHUTDOWN_TIMEOUT,
    OPTIONS,
    ConfigError,
    LogLevel,
    Settings,
    load_settings,
)

if TYPE_CHECKING:
    from pathlib import Path


class TestDefaults:
    def test_no_flags_and_no_environment_give_the_documented_defaults(self) -> None:
        """With nothing set, echod serves HTTP on 3000 and HTTPS on 10000 with one worker."""
        settings = load_settings([], {})
        assert settings == Settings()
        assert (settings.host, settings.port, settings.tls_port) == ("0.0.0.0", 3000, 10000)
        assert settings.workers == 1
        assert settings.log_level is LogLevel.INFO
        assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 1024 * 1024
        assert settings.shutdown_timeout == DEFAULT_SHUTDOWN_TIMEOUT == 10.0
        assert settings.header_timeout == DEFAULT_HEADER_TIMEOUT
        assert settings.users_file is None
        assert settings.reload_interval == DEFAULT_RELOAD_INTERVAL == 5.0
        assert settings.tls_enabled

    def test_tls_port_zero_turns_https_off(self) -> None:
        """--tls-port 0 means no HTTPS listener."""
        assert not load_settings(["--tls-port", "0"], {}).tls_enabled

    def test_unrelated_environment_is_ignored(self) -> None:
        """Only ECHOD_* names are read."""
        assert load_settings([], {"PORT": "1", "HOST": "x"}) == Settings()


class TestSources:
    def test_every_option_has_a_flag_and_a_variable(self) -> None:
        """Each setting is reachable both ways, with names derived from the field.

        The one exception is the state's password: a variable only, never a flag.
        """
        fields = set(Settings.__dataclass_fields__) - {"state_password"}
        assert {option.field for option in OPTIONS} == fields
        for option in OPTIONS:
            # A list is given once per item, so its flag is singular: --cors-origin.
            name = option.field.removesuffix("s") if option.kind == "list" else option.field
            assert option.flag == "--" + name.replace("_", "-")
            assert option.env == "ECHOD_" + option.field.upper()

    def test_environment_sets_a_value(self) -> None:
        """ECHOD_PORT is used when --port is absent."""
        assert load_settings([], {"ECHOD_PORT": "8080"}).port == 8080

    def test_flag_wins_over_environment(self) -> None:
        """A flag overrides its variable."""
        settings = load_settings(["--port", "9090"], {"ECHOD_PORT": "8080"})
        assert settings.port == 9090

    def test_values_are_parsed_to_their_types(self, tmp_path: Path) -> None:
        """Numbers, seconds, paths and levels come out typed."""
        users = tmp_path / "users"
        users.write_text("u:x\n")
        settings = load_settings(
            [
                "--workers=3",
                "--log-level=DEBUG",
                "--shutdown-timeout=2.5",
                f"--users-file={users}",
                "--host=[::1]",
            ],
            {
                "ECHOD_MAX_BODY_BYTES": " 2048 ",
                "ECHOD_DRAIN_DELAY": "0.5",
                "ECHOD_RELOAD_INTERVAL": "0",
            },
        )
        assert settings.workers == 3
        assert settings.log_level is LogLevel.DEBUG
        assert settings.shutdown_timeout == 2.5
        assert settings.users_file == users
        assert settings.max_body_bytes == 2048
        assert settings.drain_delay == 0.5
        assert settings.reload_interval == 0
        assert settings.host == "::1"


class TestErrors:
    @pytest.mark.parametrize(
        ("argv", "environ", "message"),
        [
            (["--port", "abc"], {}, "--port='abc': not an integer (expected 0-65535)"),
            (["--port", "65536"], {}, "--port='65536': out of range (expected 0-65535)"),
            ([], {"ECHOD_PORT": "70000"}, "ECHOD_PORT='70000': out of range"),
            (["--workers", "0"], {}, "--workers='0': out of range (expected 1-64)"),
            (["--log-level", "loud"], {}, "--log-level='loud': not a log level"),
            ([], {"ECHOD_LOG_LEVEL": "trace"}, "ECHOD_LOG_LEVEL='trace': not a log level"),
            (["--max-body-bytes", "-1"], {}, "--max-body-bytes='-1': out of range"),
            (["--max-header-bytes", "100"], {}, "--max-header-bytes='100': out of range"),
            (["--shutdown-timeout", "nan"], {}, "--shutdown-timeout='nan': out of range"),
            (["--shutdown-timeout", "soon"], {}, "--shutdown-timeout='soon': not a number"),
            (["--drain-delay", "-1"], {}, "--drain-delay='-1': out of range"),
            (["--reload-interval", "-5"], {}, "--reload-interval='-5': out of range"),
            (["--header-timeout", "0"], {}, "--header-timeout='0': out of range"),
            (["--users-file", "/no/such/file"], {}, "--users-file='/no/such/file': no such file"),
            (["--host", " "], {}, "--host=' ': empty host"),
            (["--tls-port", "3000"], {}, "--tls-port=3000: the HTTPS port must differ"),
            (["--bogus"], {}, "unrecognized arguments: --bogus"),
        ],
        ids=[
            "port-not-int",
            "port-too-big",
            "env-port-too-big",
            "workers-zero",
            "log-level-flag",
            "log-level-env",
            "body-negative",
            "header-too-small",
            "timeout-nan",
            "timeout-word",
            "drain-negative",
            "reload-interval-negative",
            "header-timeout-zero",
            "users-missing",
            "host-empty",
            "same-ports",
            "unknown-flag",
        ],
    )
    def test_bad_values_name_the_setting_and_the_value(
        self, argv: list[str], environ: dict[str, str], message: str
    ) -> None:
        """The error says which flag or variable held which bad value."""
        with pytest.raises(
            ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")
        ):
            load_settings(argv, environ)

    def test_certificate_without_key_is_refused(self, tmp_path: Path) -> None:
        """HTTPS needs both halves; the error names the missing one."""
        cert = tmp_path / "cert.pem"
        cert.write_text("x")
        with pytest.raises(ConfigError, match=r"ECHOD_TLS_CERT is set but --tls-key"):
            load_settings([], {"ECHOD_TLS_CERT": str(cert)})


class TestFixtureSettings:
    def test_the_defaults(self) -> None:
        """Delays up to 10 s, CORS off, no hostname, no client certificates."""
        settings = load_settings([], {})
        assert settings.max_delay == 10.0
        assert settings.cors_origins == ()
        assert not settings.expose_hostname
        assert settings.tls_client_ca is None

    def test_cors_origins_by_repeated_flag_or_a_comma_list(self) -> None:
        """The flag repeats; the variable is a comma-separated list; both lower-cased."""
        flags = load_settings(
            ["--cors-origin", "https://App.example", "--cors-origin", "http://localhost:8080"], {}
        )
        assert flags.cors_origins == ("https://app.example", "http://localhost:8080")
        environ = {"ECHOD_CORS_ORIGINS": " https://a.example , https://b.example:8443 "}
        assert load_settings([], environ).cors_origins == (
            "https://a.example",
            "https://b.example:8443",
        )
        assert load_settings(["--cors-origin", "*"], {}).cors_origins == ("*",)

    @pytest.mark.parametrize(
        ("argv", "environ", "message"),
        [
            (["--cors-origin", "app.example"], {}, "--cors-origin='app.example': not an origin"),
            ([], {"ECHOD_CORS_ORIGINS": "https://a.example/path"}, "ECHOD_CORS_ORIGINS="),
            (["--cors-origin", "*", "--cors-origin", "https://a.example"], {},
             "--cors-origin='*,https://a.example': * allows every origin"),
            ([], {"ECHOD_CORS_ORIGINS": "*,https://a.example"}, "ECHOD_CORS_ORIGINS="),
            (["--max-delay", "-1"], {}, "--max-delay='-1': out of range"),
            (["--max-delay", "soon"], {}, "--max-delay='soon': not a number"),
            ([], {"ECHOD_EXPOSE_HOSTNAME": "maybe"},
             "ECHOD_EXPOSE_HOSTNAME='maybe': not a boolean"),
            (["--port", "0", "--tls-port", "0"], {}, "--port=0 and --tls-port=0"),
        ],
        ids=["origin-no-scheme", "origin-with-path", "star-and-more-flags", "star-and-more-env",
             "delay-negative", "delay-word", "hostname-not-boolean", "both-ports-off"],
    )  # fmt: skip
    def test_bad_values_name_the_setting(
        self, argv: list[str], environ: dict[str, str], message: str
    ) -> None:
        """Each error names the flag or variable."""
        with pytest.raises(ConfigError, match="^" + re.escape(message)):
            load_settings(argv, environ)

    @pytest.mark.parametrize(
        ("raw", "expected"), [("1", True), ("on", True), ("0", False), ("", False)]
    )
    def test_expose_hostname_by_switch_or_variable(self, raw: str, expected: bool) -> None:
        """The flag is a switch; the variable takes the usual words."""
        assert load_settings(["--expose-hostname"], {}).expose_hostname
        assert load_settings([], {"ECHOD_EXPOSE_HOSTNAME": raw}).expose_hostname is expected

    def test_port_zero_turns_plain_http_off(self) -> None:
        """--port 0 leaves HTTPS alone."""
        settings = load_settings(["--port", "0"], {})
        assert not settings.http_enabled
        assert settings.tls_enabled

    def test_a_client_ca_needs_https(self, tmp_path: Path) -> None:
        """Client certificates are asked for over HTTPS only."""
        ca = tmp_path / "ca.pem"
        ca.write_text("x")
        assert load_settings(["--tls-client-ca", str(ca)], {}).tls_client_ca == ca
        with pytest.raises(ConfigError, match="--tls-client-ca is set but HTTPS is off"):
            load_settings(["--tls-client-ca", str(ca), "--tls-port", "0"], {})


class TestState:
    def test_the_default_is_the_runtime_directory(self) -> None:
        """No --state: no server, the default prefix, no password."""
        settings = load_settings([], {})
        assert (settings.state, settings.state_prefix, settings.state_password) == (
            None,
            "echod:",
            None,
        )

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("redis://127.0.0.1", "redis://127.0.0.1:6379/0"),
            ("redis://cache.internal:6380/3", "redis://cache.internal:6380/3"),
            ("rediss://echod@cache.internal/1", "rediss://echod@cache.internal:6379/1"),
            ("redis://[::1]:7000", "redis://[::1]:7000/0"),
        ],
    )
    def test_a_redis_url_is_read_and_shown_whole(self, url: str, shown: str) -> None:
        """Port 6379 and database 0 by default; an ACL user is kept; TLS with rediss."""
        state = load_settings(["--state", url], {}).state
        assert str(state) == shown
        assert state is not None
        assert state.tls == url.startswith("rediss")

    def test_the_password_comes_from_its_variable_and_is_never_shown(self) -> None:
        """ECHOD_STATE_PASSWORD: kept, but out of the settings' repr."""
        settings = load_settings(
            ["--state", "redis://h"], {"ECHOD_STATE_PASSWORD": "correct horse"}
        )
        assert settings.state_password == "correct horse"  # noqa: S105 - a test's own
        assert "correct horse" not in repr(settings)

    @pytest.mark.parametrize(
        ("url", "error"),
        [
            ("redis://bob:hunter2@h", "--state='redis://bob:***@h': the URL holds a password"),
            ("http://h", "not a Redis URL"),
            ("redis://", "not a Redis URL"),
            ("redis://h:99999", "not a Redis URL"),
            ("redis://h/x", "the database 'x' is not a number"),
            ("redis://h/0?ssl=1", "takes no query or fragment"),
        ],
    )
    def test_a_bad_url_is_exit_2_that_never_shows_a_password(self, url: str, error: str) -> None:
        """The message names the flag and what was wrong; a password in it is hidden."""
        with pytest.raises(ConfigError) as raised:
            load_settings(["--state", url], {})
        assert error in str(raised.value)
        assert "hunter2" not in str(raised.value)

    @pytest.mark.parametrize("prefix", ["", "a b", "x" * 65, "é"])
    def test_a_bad_prefix_is_refused(self, prefix: str) -> None:
        """1 to 64 characters of [A-Za-z0-9._:-]."""
        with pytest.raises(ConfigError, match="not a key prefix"):
            load_settings(["--state", "redis://h", "--state-prefix", prefix], {})

    @pytest.mark.parametrize(
        ("argv", "environ", "named"),
        [
            (["--state-prefix", "x:"], {}, "--state-prefix"),
            ([], {"ECHOD_STATE_PASSWORD": "pw"}, "ECHOD_STATE_PASSWORD"),
        ],
    )
    def test_a_prefix_or_password_without_redis_is_refused(
        self, argv: list[str], environ: dict[str, str], named: str
    ) -> None:
        """They mean nothing for the runtime directory: a mistake, said at start."""
        with pytest.raises(ConfigError, match=f"{named} is set but --state"):
            load_settings(argv, environ)
