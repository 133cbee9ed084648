"""Server: sets an instance up and runs it. Ports, TLS material, the runtime, the supervisor.

An echod instance is a small tree of processes::

    echod                      the supervisor (echod.supervisor): signals, readiness
    ├── listener http          a granian server on --port (echod.listener)
    │   └── worker x --workers   each runs the app (echod.app)
    └── listener https         a granian server on --tls-port, with TLS and HTTP/2 (ALPN)
        └── worker x --workers

What the processes share (the ready byte, the metric slots, the development
certificate) lives in the instance's runtime directory (echod.runtime).
"""

from __future__ import annotations

import logging
import socket
import ssl
from functools import partial
from typing import TYPE_CHECKING, Any

from echod.certs import self_signed
from echod.config import ConfigError, Settings
from echod.counts import slots_for
from echod.layout import Layout
from echod.listener import Listener, worker_app
from echod.runtime import Runtime
from echod.supervisor import Supervisor

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["check_tls", "serve"]

log = logging.getLogger("echod")


def serve(settings: Settings, users: Mapping[str, bytes], *, log_config: dict[str, Any]) -> int:
    """Run echod until it is told to stop; return the exit status (0, or 1 on failure).

    Raises:
        ConfigError: the TLS certificate or key cannot be used.
    """
    listeners = _listeners(settings)
    check_tls(settings)
    if busy := _busy_ports(listeners):
        for listener, error in busy:
            log.error("cannot listen on %s: %s", listener.url, error)
        return 1
    runtime = Runtime.create(Layout(), slots_for(len(listeners), settings.workers))
    try:
        if settings.tls_enabled and settings.tls_cert is None:
            cert, key = runtime.write_dev_certificate(*self_signed())
            listeners = [
                *listeners[:-1],
                Listener("https", settings.host, settings.tls_port, cert, key),
            ]
            log.warning(
                "HTTPS uses a self-signed certificate for localhost made at start; clients "
                "must skip verification (curl -k); set --tls-cert and --tls-key for a real one"
            )
        loader = partial(worker_app, settings, users, runtime.ref)
        return Supervisor(settings, listeners, loader, log_config, runtime).run()
    finally:
        runtime.remove()


def check_tls(settings: Settings) -> None:
    """Load the configured certificate and key once, so a bad pair stops echod at start.

    Raises:
        ConfigError: they cannot be loaded or do not match.
    """
    if not settings.tls_enabled or settings.tls_cert is None or settings.tls_key is None:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (ssl.SSLError, OSError) as error:
        raise ConfigError(
            f"--tls-cert={str(settings.tls_cert)!r} with --tls-key={str(settings.tls_key)!r}: "
            f"cannot be used: {error}"
        ) from None


def _listeners(settings: Settings) -> list[Listener]:
    listeners = [Listener("http", settings.host, settings.port)]
    if settings.tls_enabled:
        listeners.append(
            Listener("https", settings.host, settings.tls_port, settings.tls_cert, settings.tls_key)
        )
    return listeners


def _busy_ports(listeners: Sequence[Listener]) -> list[tuple[Listener, OSError]]:
    # granian binds with SO_REUSEPORT, which would let a second instance share a port
    # silently; a plain bind first makes a port in use an error instead.
    busy = []
    for listener in listeners:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                listener.host, listener.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as error:
            busy.append((listener, error))
    return busy
