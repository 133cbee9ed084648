"""Healthcheck: the ``echod healthcheck`` command, which asks a running echod's ``/health``.

It reads the same settings as ``echod`` (flags, then ``ECHOD_*`` variables, then the
defaults) to find the plain HTTP port (or, with ``--port 0``, the HTTPS port, whose
certificate it does not verify), sends ``GET /health`` there, and exits 0 if the
answer is 200 and 1 otherwise: refused, silent, any other status, or a bad setting.
A container's HEALTHCHECK runs it, so the image needs no curl, and the probe follows
``ECHOD_PORT`` and ``ECHOD_HOST`` instead of a port written into the image.

The whole exchange has :data:`ANSWER_TIMEOUT` seconds, so that the command, the
interpreter's start included, ends within 2 s. It prints one line: the answer on stdout,
or why it is unhealthy on stderr. It imports neither the server nor the metrics library.
"""

from __future__ import annotations

import socket
import ssl
import sys
import time
from typing import TYPE_CHECKING

from echod.settings.config import ConfigError, load_settings

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from echod.settings.config import Settings

__all__ = ["ANSWER_TIMEOUT", "EXIT_HEALTHY", "EXIT_UNHEALTHY", "check", "main", "probe_address"]

#: Seconds to connect, send the request and read the status line, all together.
ANSWER_TIMEOUT = 1.5
EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1

# A server listening on every address is asked on the loopback address of its family.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - compared, not listened on
_MAX_STATUS_LINE = 1024


class Unhealthy(Exception):  # noqa: N818 - the name is the verdict
    """The probe got no 200 from /health; the message says what it got."""


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Probe the echod that these settings describe; return 0 if it is healthy, else 1."""
    try:
        settings = load_settings(argv, environ, prog="echod healthcheck")
    except ConfigError as error:
        print(f"echod healthcheck: unhealthy: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_UNHEALTHY
    except SystemExit as done:  # --help and --version
        return int(done.code or 0)
    host, port = probe_address(settings)
    tls = not settings.http_enabled
    url = f"{'https' if tls else 'http'}://{_authority(host, port)}/health"
    if tls and settings.tls_client_ca is not None:
        print(  # noqa: T201
            f"echod healthcheck: unhealthy: {url}: HTTPS asks for a client certificate "
            "(--tls-client-ca) and the plain HTTP port is off; probe a plain port instead",
            file=sys.stderr,
        )
        return EXIT_UNHEALTHY
    try:
        status_line = check(host, port, tls=tls)
    except Unhealthy as error:
        print(f"echod healthcheck: unhealthy: {url}: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_UNHEALTHY
    print(f"echod healthcheck: healthy: {url}: {status_line}")  # noqa: T201
    return EXIT_HEALTHY


def probe_address(settings: Settings) -> tuple[str, int]:
    """The address to ask: echod's host (loopback for a wildcard) and its HTTP port.

    With the plain HTTP listener off (``--port 0``), the HTTPS port.
    """
    port = settings.port if settings.http_enabled else settings.tls_port
    return _LOOPBACK.get(settings.host, settings.host), port


def check(host: str, port: int, timeout: float = ANSWER_TIMEOUT, *, tls: bool = False) -> str:
    """Ask ``GET /health`` at ``host:port``; return the status line if it is 200.

    With ``tls``, over TLS without verifying the certificate: the probe checks that echod
    answers, not who it is.

    Raises:
        Unhealthy: no connection, no status line within ``timeout`` seconds in all, or
            a status other than 200.
    """
    deadline = time.monotonic() + timeout
    request = (
        f"GET /health HTTP/1.1\r\nHost: {_authority(host, port)}\r\n"
        "User-Agent: echod-healthcheck\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            conn = _unverified().wrap_socket(raw, server_hostname="localhost") if tls else raw
            conn.settimeout(_remaining(deadline))
            conn.sendall(request)
            status_line = _read_status_line(conn, deadline)
    except TimeoutError:
        raise Unhealthy(f"no answer within {timeout:g}s") from None
    except OSError as error:
        raise Unhealthy(error.strerror or str(error)) from None
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):  # noqa: PLR2004 - version, status
        raise Unhealthy(f"not an HTTP answer: {status_line[:80]!r}")
    if parts[1] != "200":
        raise Unhealthy(f"answered {status_line}")
    return status_line


def _unverified() -> ssl.SSLContext:
    """A TLS client context that does not verify: the probe asks whether echod answers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _read_status_line(conn: socket.socket, deadline: float) -> str:
    received = b""
    while b"\n" not in received:
        if len(received) > _MAX_STATUS_LINE:
            raise Unhealthy("the status line is too long")
        conn.settimeout(_remaining(deadline))
        chunk = conn.recv(_MAX_STATUS_LINE)
        if not chunk:
            raise Unhealthy("the connection closed before an answer")
        received += chunk
    return received.split(b"\n", 1)[0].decode("latin-1").strip()


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
