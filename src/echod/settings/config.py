"""Settings: the only reader of command-line flags and ``ECHOD_*`` variables.

Every setting has a flag and an environment variable; the flag wins. Values are
checked here, once, and errors name the flag or variable that carried the bad value.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from echod.settings import values
from echod.settings.options import Option, OptionError, build_parser, parse_value
from echod.version import __version__

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence
    from pathlib import Path

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_JWT_LEEWAY",
    "DEFAULT_LOG_BUFFER_BYTES",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_DELAY",
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_WS_CONNECTIONS",
    "DEFAULT_RELOAD_INTERVAL",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_STATE_PREFIX",
    "DEFAULT_WS_IDLE_TIMEOUT",
    "DEFAULT_WS_MEMORY_LIMIT",
    "STATE_PASSWORD_ENV",
    "ConfigError",
    "LogLevel",
    "Settings",
    "flag",
    "load_settings",
]

#: Largest request body accepted; a larger one is answered 413 without being read.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: Largest request head (request line and headers); a larger one is answered 431.
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
#: Seconds a client has to send a request head, and the idle keep-alive timeout.
DEFAULT_HEADER_TIMEOUT = 10.0
#: Seconds in-flight requests get to finish once shutdown has begun.
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
#: Seconds a WebSocket may go without a message from its client before it is closed.
DEFAULT_WS_IDLE_TIMEOUT = 60.0
#: Bytes of memory (RSS) of a serving process past which it closes its WebSockets.
DEFAULT_WS_MEMORY_LIMIT = 192 * 1024 * 1024
#: Open WebSocket connections per worker; one more is refused with 503.
DEFAULT_MAX_WS_CONNECTIONS = 1000
#: The longest delay, in seconds, a request may ask for (/api/inspect, /api/stream).
DEFAULT_MAX_DELAY = 10.0
#: The most bytes /api/bytes/{n} sends: n above it is a 400.
DEFAULT_MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024
#: Seconds between two looks at the users, certificate and key files for changes.
DEFAULT_RELOAD_INTERVAL = 5.0
#: Seconds a client has to send a request's whole body; past them the answer is 408.
DEFAULT_BODY_TIMEOUT = 30.0
#: Bytes of log lines that may wait for a slow stdout before more are dropped.
DEFAULT_LOG_BUFFER_BYTES = 8 * 1024 * 1024
#: Seconds of clock skew allowed when a token's ``exp`` and ``nbf`` are checked.
DEFAULT_JWT_LEEWAY = 30.0
#: What every key echod writes in Redis starts with (``--state-prefix``).
DEFAULT_STATE_PREFIX = "echod:"
#: The variable that holds the password of the Redis server of ``--state``: never a flag,
#: so that it shows in no process list, and never logged.
STATE_PASSWORD_ENV = "ECHOD_STATE_PASSWORD"  # noqa: S105 - a variable's name, not a password

_MAX_WORKERS = 64
_MAX_BODY_LIMIT = 1024 * 1024 * 1024
# granian (hyper) refuses read buffers under 8 KiB.
_MIN_HEADER_BYTES = 8 * 1024
_MAX_HEADER_LIMIT = 1024 * 1024
_MAX_SECONDS = 3600.0
_MAX_WS_CONNECTIONS = 100_000
_MIN_WS_MEMORY = 64 * 1024 * 1024
_MAX_WS_MEMORY = 1024**4
_MAX_DOWNLOAD_LIMIT = 1 << 40  # 1 TiB: a download streams, so memory does not bound it
_MIN_LOG_BUFFER = 64 * 1024
_MAX_LOG_BUFFER = 1024 * 1024 * 1024


class ConfigError(ValueError):
    """A setting has a value echod cannot run with; the message names it."""


class LogLevel(enum.StrEnum):
    """The log levels echod accepts, lowest first."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything echod is configured with, typed and checked."""

    host: str = "0.0.0.0"  # noqa: S104 - a service listens on all interfaces by default
    port: int = 3000
    tls_port: int = 10000
    tls_cert: Path | None = None
    tls_key: Path | None = None
    users_file: Path | None = None
    workers: int = 1
    log_level: LogLevel = LogLevel.INFO
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    drain_delay: float = 0.0
    ws_idle_timeout: float = DEFAULT_WS_IDLE_TIMEOUT
    max_ws_connections: int = DEFAULT_MAX_WS_CONNECTIONS
    ws_memory_limit: int = DEFAULT_WS_MEMORY_LIMIT
    max_delay: float = DEFAULT_MAX_DELAY
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES
    cors_origins: tuple[str, ...] = ()
    expose_hostname: bool = False
    tls_client_ca: Path | None = None
    reload_interval: float = DEFAULT_RELOAD_INTERVAL
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    log_buffer_bytes: int = DEFAULT_LOG_BUFFER_BYTES
    h2c: bool = False
    runtime_dir: Path | None = None
    jwt_jwks: Path | None = None
    jwt_issuers: tuple[str, ...] = ()
    jwt_audiences: tuple[str, ...] = ()
    jwt_leeway: float = DEFAULT_JWT_LEEWAY
    auth_verify: bool = False
    #: Where the scenarios' state lives: a Redis server, or None for the runtime directory.
    state: values.StateUrl | None = None
    state_prefix: str = DEFAULT_STATE_PREFIX
    #: The password of ``state``'s server, from ``ECHOD_STATE_PASSWORD``: left out of the
    #: settings' repr, so that no log line can show it.
    state_password: str | None = dataclasses.field(default=None, repr=False)

    @property
    def tls_enabled(self) -> bool:
        """Whether the HTTPS listener runs."""
        return self.tls_port != 0

    @property
    def http_enabled(self) -> bool:
        """Whether the plain HTTP listener runs."""
        return self.port != 0


def _log_level(raw: str) -> LogLevel:
    try:
        return LogLevel(raw.strip().lower())
    except ValueError:
        choices = ", ".join(level.value for level in LogLevel)
        raise ValueError(f"not a log level (expected one of {choices})") from None


_PORT = values.integer(0, 65535)

OPTIONS: tuple[Option, ...] = (
    Option("host", values.host, "HOST", "address to listen on (default 0.0.0.0; :: for IPv6)"),
    Option("port", _PORT, "N", "plain HTTP port, 0 turns it off (default 3000)"),
    Option("tls_port", _PORT, "N", "HTTPS port, 0 turns it off (default 10000)"),
    Option("tls_cert", values.readable_file, "FILE", "PEM certificate chain for HTTPS"),
    Option("tls_key", values.readable_file, "FILE", "PEM private key for HTTPS"),
    Option(
        "tls_client_ca",
        values.readable_file,
        "FILE",
        "PEM CA certificates: HTTPS then requires a client certificate they signed (mTLS)",
    ),
    Option("users_file", values.readable_file, "FILE", "htpasswd file of bcrypt hashes"),
    Option("workers", values.integer(1, _MAX_WORKERS), "N", "worker processes (default 1)"),
    Option("log_level", _log_level, "LEVEL", "debug, info, warning or error (default info)"),
    Option(
        "max_body_bytes",
        values.integer(1, _MAX_BODY_LIMIT),
        "N",
        f"largest request body in bytes (default {DEFAULT_MAX_BODY_BYTES})",
    ),
    Option(
        "max_header_bytes",
        values.integer(_MIN_HEADER_BYTES, _MAX_HEADER_LIMIT),
        "N",
        f"largest request head in bytes (default {DEFAULT_MAX_HEADER_BYTES})",
    ),
    Option(
        "header_timeout",
        values.seconds(1.0, _MAX_SECONDS),
        "S",
        f"seconds to read a request head; also the keep-alive idle timeout "
        f"(default {DEFAULT_HEADER_TIMEOUT:g})",
    ),
    Option(
        "shutdown_timeout",
        values.seconds(0.1, _MAX_SECONDS),
        "S",
        f"seconds in-flight requests get on shutdown (default {DEFAULT_SHUTDOWN_TIMEOUT:g})",
    ),
    Option(
        "drain_delay",
        values.seconds(0.0, _MAX_SECONDS),
        "S",
        "seconds /ready answers 503 before the listeners close on SIGTERM (default 0)",
    ),
    Option(
        "ws_idle_timeout",
        values.seconds(1.0, _MAX_SECONDS),
        "S",
        f"seconds a WebSocket may go without a message before it is closed "
        f"(default {DEFAULT_WS_IDLE_TIMEOUT:g})",
    ),
    Option(
        "max_ws_connections",
        values.integer(1, _MAX_WS_CONNECTIONS),
        "N",
        f"open WebSocket connections per worker (default {DEFAULT_MAX_WS_CONNECTIONS})",
    ),
    Option(
        "ws_memory_limit",
        values.integer(_MIN_WS_MEMORY, _MAX_WS_MEMORY),
        "N",
        f"bytes of memory (RSS) of a serving process past which it closes all its "
        f"WebSockets (default {DEFAULT_WS_MEMORY_LIMIT})",
    ),
    Option(
        "max_delay",
        values.seconds(0.0, _MAX_SECONDS),
        "S",
        f"longest delay a request may ask for, in seconds (default {DEFAULT_MAX_DELAY:g})",
    ),
    Option(
        "max_download_bytes",
        values.integer(0, _MAX_DOWNLOAD_LIMIT),
        "N",
        f"most bytes /api/bytes/{{n}} may be asked for (default {DEFAULT_MAX_DOWNLOAD_BYTES})",
    ),
    Option(
        "cors_origins",
        values.origin,
        "ORIGIN",
        "allow this origin to call the API from a browser (CORS); repeatable, or * for any",
        kind="list",
    ),
    Option(
        "expose_hostname",
        values.boolean,
        "",
        "show the machine's hostname in /api/inspect (off: it tells callers about the host)",
        kind="switch",
    ),
    Option(
        "body_timeout",
        values.seconds(1.0, _MAX_SECONDS),
        "S",
        f"seconds a client has to send a request's body; past them the answer is 408 and "
        f"the connection closes (default {DEFAULT_BODY_TIMEOUT:g})",
    ),
    Option(
        "h2c",
        values.boolean,
        "",
        "also serve HTTP/2 with prior knowledge (h2c) on the plain port; a silent connection "
        "is then held until the client leaves (see the README)",
        kind="switch",
    ),
    Option(
        "log_buffer_bytes",
        values.integer(_MIN_LOG_BUFFER, _MAX_LOG_BUFFER),
        "N",
        f"bytes of log lines that may wait for a slow stdout; more are dropped and counted "
        f"(default {DEFAULT_LOG_BUFFER_BYTES})",
    ),
    Option(
        "runtime_dir",
        values.directory,
        "DIR",
        "where the runtime directory (shared state, the certificate and key in service) is "
        "made (default /dev/shm, or the temporary directory without it)",
    ),
    Option(
        "state",
        values.state_url,
        "URL",
        "keep the scenarios' state (attempts, rate limits) in Redis or Valkey, "
        "redis://host[:port][/db] or rediss://, shared by every replica; the password "
        f"comes from {STATE_PASSWORD_ENV} (default: the runtime directory, shared by "
        "this instance's workers)",
        shown=values.hide_password,
    ),
    Option(
        "state_prefix",
        values.state_prefix,
        "PREFIX",
        f"what every key echod writes in Redis starts with (default {DEFAULT_STATE_PREFIX})",
    ),
    Option(
        "reload_interval",
        values.seconds(0.0, _MAX_SECONDS),
        "S",
        f"seconds between looks at the users, certificate, key and client CA files; a change "
        f"reloads them, and 0 turns the looks off (default {DEFAULT_RELOAD_INTERVAL:g})",
    ),
    Option(
        "jwt_jwks",
        values.readable_file,
        "FILE",
        "JSON Web Key Set: /api/ routes then also take bearer tokens (JWTs) its keys signed",
    ),
    Option(
        "jwt_issuers",
        values.text,
        "ISSUER",
        "an issuer (iss) a token may come from; repeatable (default: any)",
        kind="list",
    ),
    Option(
        "jwt_audiences",
        values.text,
        "AUDIENCE",
        "an audience (aud) a token must name; repeatable (default: not checked)",
        kind="list",
    ),
    Option(
        "jwt_leeway",
        values.seconds(0.0, _MAX_SECONDS),
        "S",
        f"seconds of clock skew allowed on a token's exp and nbf (default {DEFAULT_JWT_LEEWAY:g})",
    ),
    Option(
        "auth_verify",
        values.boolean,
        "",
        "serve /auth/verify, the target of a proxy's forward auth (nginx auth_request, "
        "Caddy forward_auth, Traefik ForwardAuth, Envoy ext_authz)",
        kind="switch",
    ),
)


def flag(field: str) -> str:
    """The command-line flag of the setting ``field``: ``--users-file`` for ``users_file``."""
    return next(option.flag for option in OPTIONS if option.field == field)


def parser(prog: str = "echod") -> argparse.ArgumentParser:
    """The command-line parser of ``prog``: every setting of :data:`OPTIONS`."""
    return build_parser(
        OPTIONS,
        prog=prog,
        description="A JSON echo API: POST or PUT a JSON object to /api/echo. "
        "'echod healthcheck' with the same settings asks a running echod's /health "
        "and exits 0 if it answers 200, 1 otherwise.",
        epilog="Every option can also be set with its ECHOD_* variable "
        "(--max-body-bytes is ECHOD_MAX_BODY_BYTES); the flag wins.",
        version=f"echod {__version__}",
    )


def load_settings(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    prog: str = "echod",
) -> Settings:
    """Build the settings from flags, then ``ECHOD_*`` variables, then defaults.

    ``prog`` names the command in ``--help``: ``echod``, or ``echod healthcheck``.

    Raises:
        ConfigError: a value is malformed or out of range; the message names the flag
            or variable and the value.
    """
    environ = os.environ if environ is None else environ
    try:
        given = parser(prog).parse_args(argv)
    except OptionError as error:
        raise ConfigError(str(error)) from None
    given_values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        raw = getattr(given, option.field)
        source = option.flag
        if raw is None:
            raw = environ.get(option.env)
            source = option.env
        if raw is None:
            continue
        try:
            given_values[option.field] = parse_value(option, raw)
        except ValueError as error:
            shown = raw if isinstance(raw, str) else ",".join(raw)  # a list's repeated flags
            if option.shown is not None:
                shown = option.shown(shown)
            raise ConfigError(f"{source}={shown!r}: {error}") from None
        sources[option.field] = source
    if password := environ.get(STATE_PASSWORD_ENV):
        given_values["state_password"] = password
        sources["state_password"] = STATE_PASSWORD_ENV
    settings = Settings(**given_values)
    _check_combinations(settings, sources)
    return settings


def _check_combinations(settings: Settings, sources: Mapping[str, str]) -> None:
    if (settings.tls_cert is None) != (settings.tls_key is None):
        given = "tls_cert" if settings.tls_cert is not None else "tls_key"
        missing = next(o for o in OPTIONS if o.field in {"tls_cert", "tls_key"} - {given})
        raise ConfigError(
            f"{sources[given]} is set but {missing.flag} ({missing.env}) is not: "
            "HTTPS needs both a certificate and its key"
        )
    if not settings.http_enabled and not settings.tls_enabled:
        raise ConfigError(
            f"{sources.get('port', '--port')}=0 and {sources.get('tls_port', '--tls-port')}=0: "
            "with both listeners off there is nothing to serve"
        )
    if settings.tls_port == settings.port:
        raise ConfigError(
            f"{sources.get('tls_port', '--tls-port')}={settings.tls_port}: "
            f"the HTTPS port must differ from the HTTP port"
        )
    if "*" in settings.cors_origins and len(settings.cors_origins) > 1:
        raise ConfigError(
            f"{sources['cors_origins']}={','.join(settings.cors_origins)!r}: "
            "* allows every origin, so it cannot be listed with others"
        )
    if settings.state is None:
        _refuse_without(
            sources,
            ("state_prefix", "state_password"),
            "--state (ECHOD_STATE)",
            "the state is in the runtime directory, which takes neither a prefix nor a password",
        )
    if settings.jwt_jwks is None:
        _refuse_without(
            sources,
            ("jwt_issuers", "jwt_audiences", "jwt_leeway"),
            f"{flag('jwt_jwks')} (ECHOD_JWT_JWKS)",
            "tokens are only verified with a key set",
        )
    if settings.tls_client_ca is not None and not settings.tls_enabled:
        raise ConfigError(
            f"{sources['tls_client_ca']} is set but HTTPS is off (--tls-port 0): "
            "client certificates are only asked for over HTTPS"
        )


def _refuse_without(
    sources: Mapping[str, str], fields: tuple[str, ...], needed: str, why: str
) -> None:
    """Refuse a setting of ``fields`` given without the setting ``needed``, saying ``why``."""
    for field in fields:
        if field in sources:
            raise ConfigError(f"{sources[field]} is set but {needed} is not: {why}")
