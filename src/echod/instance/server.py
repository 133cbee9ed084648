"""Server: sets an instance up and runs it. Ports, TLS material, the runtime, the supervisor.

An echod instance is a small tree of processes::

    echod                      the supervisor (echod.instance.supervisor): signals, readiness
    ├── listener http          a granian server on --port (echod.instance.listener)
    │   └── worker x --workers   each runs the app (echod.http.app)
    └── listener https         a granian server on --tls-port, with TLS and HTTP/2 (ALPN)
        └── worker x --workers

What the processes share (the ready byte, the metric slots, the users and the
certificate in service) lives in the instance's runtime directory (echod.instance.runtime).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import socket
from functools import partial
from typing import TYPE_CHECKING, Any

from echod.instance.listener import Listener
from echod.instance.material import build, read
from echod.instance.runtime import Runtime
from echod.instance.supervisor import Supervisor
from echod.instance.worker import worker_app
from echod.telemetry.metric_layout import Layout
from echod.telemetry.metric_store import slots_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from echod.settings.config import Settings

__all__ = ["serve"]

log = logging.getLogger("echod")


def serve(settings: Settings, *, log_config: dict[str, Any]) -> int:
    """Run echod until it is told to stop; return the exit status (0, or 1 on failure).

    Raises:
        ConfigError: the users file, or the TLS certificate or key, cannot be used.
    """
    # SIGHUP reloads once the supervisor runs; until then it must not stop echod.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    seen = read(settings)
    material = build(settings, seen, kept=None)
    listeners = _listeners(settings, None)
    if busy := _busy_ports(listeners):
        for listener, error in busy:
            log.error("cannot listen on %s: %s", listener.url, error)
        return 1
    if settings.users_file is None:
        log.warning(
            "using the bundled demo users, whose passwords are public; "
            "set --users-file (ECHOD_USERS_FILE) to an htpasswd file of your own"
        )
    if settings.tls_enabled and settings.tls_cert is None:
        log.warning(
            "HTTPS uses a self-signed certificate for localhost made at start; clients "
            "must skip verification (curl -k); set --tls-cert and --tls-key for a real one"
        )
    runtime = Runtime.create(Layout(), slots_for(len(listeners), settings.workers))
    try:
        runtime.publish(material)
        loader = partial(worker_app, settings, runtime.ref)
        return Supervisor(
            settings, _listeners(settings, runtime), loader, log_config, runtime, (material, seen)
        ).run()
    finally:
        runtime.remove()


def _listeners(settings: Settings, runtime: Runtime | None) -> list[Listener]:
    """The listeners; with ``runtime``, the HTTPS one serves the certificate in service there."""
    listeners = []
    if settings.http_enabled:
        listeners.append(Listener("http", settings.host, settings.port))
    if settings.tls_enabled:
        https = Listener("https", settings.host, settings.tls_port)
        if runtime is not None:
            files = runtime.tls_files()
            https = dataclasses.replace(
                https, cert=files.cert, key=files.key, client_ca=files.client_ca
            )
        listeners.append(https)
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
