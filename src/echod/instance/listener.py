"""Listener: one granian server on one port, and the app each of its workers runs.

A listener is a process of its own, in its own process group, so that the supervisor
alone decides when it stops (Ctrl-C included) and can kill it with all its workers at
once. granian forks its workers from it; each builds its app with
:func:`echod.instance.worker.worker_app`, from the users in service in the runtime
directory, and loads the certificate in service from there too.

On SIGHUP (the supervisor sends it once a reload has put new material in service),
granian replaces the workers one at a time: it starts a new one, lets it serve beside
the old one for :data:`echod.instance.lifecycle.RESPAWN_INTERVAL`, then sends the old
one SIGTERM and gives it ``--shutdown-timeout`` to finish its requests before it kills
it.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from granian.constants import HTTPModes, Interfaces, SSLProtocols
from granian.http import HTTP1Settings, HTTP2Settings
from granian.log import LogLevels
from granian.server import Server

from echod.instance.lifecycle import RESPAWN_INTERVAL, STOP_SIGNALS
from echod.settings.config import LogLevel

if TYPE_CHECKING:
    from functools import partial
    from pathlib import Path

    from echod.http.app import EchoApp
    from echod.settings.config import Settings

__all__ = ["Listener", "run_listener"]


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


def _exit_with(supervisor: int) -> None:
    """Stop this listener when the supervisor is gone (killed, so it could not say so)."""
    while os.getppid() == supervisor:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def run_listener(
    listener: Listener,
    settings: Settings,
    loader: partial[EchoApp],
    log_config: dict[str, Any],
    supervisor: int,
) -> None:
    """Serve one listener with granian, in its own process group, until granian stops."""
    os.setpgid(0, 0)
    signal.set_wakeup_fd(-1)
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # granian takes it over as it starts
    threading.Thread(target=_exit_with, args=(supervisor,), daemon=True).start()
    server = Server(
        "echod",
        address=listener.host,
        port=listener.port,
        interface=Interfaces.RSGI,
        workers=settings.workers,
        http=HTTPModes.auto,
        websockets=True,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(settings.header_timeout * 1000),
            max_buffer_size=settings.max_header_bytes,
        ),
        http2_settings=HTTP2Settings(max_headers_size=settings.max_header_bytes),
        ssl_cert=listener.cert,
        ssl_key=listener.key,
        ssl_ca=listener.client_ca,
        ssl_client_verify=listener.client_ca is not None,
        ssl_protocol_min=SSLProtocols.tls12,
        respawn_failed_workers=True,
        respawn_interval=RESPAWN_INTERVAL,
        workers_kill_timeout=math.ceil(settings.shutdown_timeout),
        log_enabled=True,
        log_level=LogLevels.debug if settings.log_level is LogLevel.DEBUG else LogLevels.warning,
        log_dictconfig=log_config,
    )
    # granian types the loader as returning a callable; an RSGI app object works as well.
    server.serve(target_loader=loader, wrap_loader=False)  # type: ignore[arg-type]
