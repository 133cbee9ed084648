"""Listener: one listening port, and the granian server that serves it in this process.

Each serving process runs one granian server per listener, embedded in its own event
loop (``granian.server.embed``), all of them in front of the one app. Each server binds
its own socket with ``SO_REUSEPORT``, so that the processes of an instance (``--workers``)
share the port, and so that a new HTTPS server can start on the port before the one it
replaces stops, when a reload changes the certificate.

What granian is told is set here, in one place:

- The plain port speaks HTTP/1.1 only, so that a connection that sends nothing, or too
  little of its head, is closed after ``--header-timeout``. With ``--h2c`` it also
  speaks HTTP/2 with prior knowledge; granian then reads the first bytes of each
  connection to tell the two apart, with no timeout on that read (hyper-util issue
  hyperium/hyper#3962), so a silent connection is held until its client leaves.
- HTTPS offers h2 and HTTP/1.1 by ALPN. A TLS handshake has 10 s to complete, which
  granian sets and echod cannot change.
- A server holds at most :data:`MAX_CONNECTIONS` connections at a time; an HTTP/2
  connection has at most :data:`MAX_STREAMS` streams open, which bounds what a client
  that never reads its answers (a zero window) can make a process hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from granian.constants import HTTPModes, Interfaces, SSLProtocols
from granian.http import HTTP1Settings, HTTP2Settings
from granian.log import LogLevels
from granian.server.embed import Server

from echod.settings.config import LogLevel

if TYPE_CHECKING:
    from pathlib import Path

    from echod.http.app import EchoApp
    from echod.settings.config import Settings

__all__ = ["BACKLOG", "MAX_CONNECTIONS", "MAX_STREAMS", "Listener", "granian_server"]

#: Connections a server holds at a time, in each serving process: idle or slow ones
#: beyond this wait in the kernel's queue. Far above what a few thousand idle sockets
#: take, which the header timeout closes anyway.
MAX_CONNECTIONS = 8192
#: The kernel's queue of connections not yet accepted, per socket.
BACKLOG = 1024
#: Streams an HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
MAX_STREAMS = 64


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening port and, for HTTPS, its certificate."""

    name: str
    host: str
    port: int
    cert: Path | None = None
    key: Path | None = None
    #: The CAs a client certificate must chain to (mTLS), or None: no client certificate.
    client_ca: Path | None = None

    @property
    def url(self) -> str:
        """The base URL clients use, as far as the listener knows it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}://{host}:{self.port}"

    @property
    def tls(self) -> bool:
        """Whether the listener speaks HTTPS."""
        return self.cert is not None


def granian_server(
    listener: Listener, app: EchoApp, settings: Settings, log_config: dict[str, Any]
) -> Server:
    """The embedded granian server of ``listener``, in front of ``app``; ``serve()`` starts it."""
    mode = HTTPModes.auto if listener.tls or settings.h2c else HTTPModes.http1
    server = Server(
        app,
        address=listener.host,
        port=listener.port,
        interface=Interfaces.RSGI,
        http=mode,
        websockets=True,
        backlog=BACKLOG,
        backpressure=MAX_CONNECTIONS,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(settings.header_timeout * 1000),
            max_buffer_size=settings.max_header_bytes,
        ),
        http2_settings=HTTP2Settings(
            max_headers_size=settings.max_header_bytes, max_concurrent_streams=MAX_STREAMS
        ),
        ssl_cert=listener.cert,
        ssl_key=listener.key,
        ssl_ca=listener.client_ca,
        ssl_client_verify=listener.client_ca is not None,
        ssl_protocol_min=SSLProtocols.tls12,
        log_enabled=True,
        log_level=LogLevels.debug if settings.log_level is LogLevel.DEBUG else LogLevels.warning,
        log_dictconfig=log_config,
    )
    # echod bounds the stop itself (echod.instance.serving): granian waits for its worker.
    server.workers_kill_timeout = None
    return server
