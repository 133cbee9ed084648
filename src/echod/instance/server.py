"""Server: sets an instance up and runs it. Ports, material, the runtime, one process or N.

With ``--workers 1`` (the default) an echod instance is one process that serves every
listener (:mod:`echod.instance.serving`). With ``--workers N`` it is N such processes and a
light supervisor over them (:mod:`echod.instance.supervisor`)::

    echod                      --workers 1: the instance; --workers N: the supervisor
    └── echod x N              (N > 1) each serves every listener, sharing the ports

What the processes share (the ready byte, the metric slots, the record of reloads, the
users and the certificate in service) lives in the instance's runtime directory
(:mod:`echod.instance.runtime`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import resource
import signal
import socket
from typing import TYPE_CHECKING, Any

from echod.instance.checker import check
from echod.instance.listener import Listener
from echod.instance.material import read
from echod.instance.reload import Reloader
from echod.instance.runtime import Runtime, runtime_root
from echod.procfs import tcp_migrate_req
from echod.settings.config import ConfigError
from echod.telemetry.metric_layout import Layout
from echod.telemetry.metric_store import slots_for
from echod.version import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

    from echod.settings.config import Settings

__all__ = ["serve"]

log = logging.getLogger("echod")


def serve(settings: Settings, *, log_config: dict[str, Any]) -> int:
    """Run echod until it is told to stop; return the exit status (0, or 1 on failure).

    Raises:
        ConfigError: the users file, the certificate or key, or the runtime directory
            cannot be used.
    """
    # SIGHUP reloads once echod serves; until then it must not stop echod.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _raise_open_files_limit()
    seen = read(settings)
    material, summary = check(settings.tls_enabled, seen, None)
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
    if settings.tls_enabled and tcp_migrate_req() != 1:
        log.warning(
            "net.ipv4.tcp_migrate_req is not 1: when a reload replaces the HTTPS server, "
            "the connections still queued on the old one are reset; set it to 1 "
            "(Linux 5.14 and newer) to have them moved to the new one"
        )
    root, moved = runtime_root(settings.runtime_dir)
    if moved is not None:
        log.warning(moved)
    runtime = Runtime.create(
        Layout(), slots_for(settings.workers), root, state=settings.state is None
    )
    try:
        try:
            runtime.publish(material)
        except OSError as error:
            raise ConfigError(
                f"{runtime.ref.directory}: the material in service cannot be written there: "
                f"{error.strerror}; free some room or set --runtime-dir"
            ) from None
        listeners = _listeners(settings, runtime)
        reloader = Reloader(settings, runtime, material, summary, seen)
        log.info("echod started", extra={"fields": _started_fields(settings, listeners)})
        status = _run(settings, runtime, listeners, log_config, reloader)
    finally:
        runtime.remove()
    if status == 0:
        log.info("echod stopped")
    else:
        log.error("echod stopped after a failure", extra={"fields": {"exit_code": status}})
    return status


def _run(
    settings: Settings,
    runtime: Runtime,
    listeners: Sequence[Listener],
    log_config: dict[str, Any],
    reloader: Reloader,
) -> int:
    """Serve in this process, or under a supervisor; what is imported depends on which."""
    if settings.workers == 1:
        from echod.instance.serving import Role, Serving  # noqa: PLC0415 - granian and the app

        return Serving(
            settings, runtime.ref, listeners, log_config, role=Role.INSTANCE, reloader=reloader
        ).run()
    from echod.instance.supervisor import Supervisor  # noqa: PLC0415 - no granian there

    return Supervisor(settings, runtime, listeners, log_config, reloader).run()


def _started_fields(settings: Settings, listeners: Sequence[Listener]) -> dict[str, Any]:
    return {
        "version": __version__,
        "pid": os.getpid(),
        "listeners": [listener.url for listener in listeners],
        "workers": settings.workers,
        "state": "runtime directory" if settings.state is None else str(settings.state),
    }


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


def _raise_open_files_limit() -> None:
    """Let echod open as many files as the hard limit allows: each connection is one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as error:
            log.warning("the open files limit stays at %s: %s", soft, error)
