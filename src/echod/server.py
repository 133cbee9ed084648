"""Server: the only module that touches sockets, signals, worker processes and TLS.

An echod instance is a small tree of processes::

    echod                      the supervisor: signals, readiness, the runtime directory
    ├── listener http          a granian server on --port
    │   └── worker x --workers   each runs the app (echod.app)
    └── listener https         a granian server on --tls-port, with TLS and HTTP/2 (ALPN)
        └── worker x --workers

The workers of both listeners count into one metrics store and read one readiness
flag, both in a private runtime directory (on /dev/shm when there is one).

On SIGTERM or SIGINT, ``/ready`` turns 503 and stays so for ``--drain-delay`` seconds
(on SIGTERM only: Ctrl-C means stop now). Then the listeners stop accepting, requests
in flight get ``--shutdown-timeout`` seconds to finish, workers that overrun are
killed, and echod exits 0. A listener that fails makes echod stop and exit 1.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import mmap
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from echod import __version__
from echod.app import ROUTES, EchoApp, create_app
from echod.certs import write_self_signed
from echod.config import ConfigError, LogLevel, Settings
from echod.metrics import Layout, MetricsStore, build_registry, slots_for

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from multiprocessing.process import BaseProcess

__all__ = ["Listener", "Readiness", "serve"]

log = logging.getLogger("echod")

#: Seconds the supervisor waits for listeners beyond --shutdown-timeout before it kills them.
KILL_GRACE = 5.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_SHM = Path("/dev/shm")  # noqa: S108 - memory-backed, and private to the directory made in it


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening port and, for HTTPS, its certificate."""

    name: str
    host: str
    port: int
    cert: Path | None = None
    key: Path | None = None

    @property
    def url(self) -> str:
        """The base URL clients use, as far as the listener knows it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}://{host}:{self.port}"


class Readiness:
    """A flag shared by every process of the instance: ready, or draining."""

    def __init__(self, path: Path) -> None:
        """Map the flag at ``path``, which :meth:`create` made."""
        with path.open("r+b") as file:
            self._map = mmap.mmap(file.fileno(), 1)

    @classmethod
    def create(cls, path: Path) -> Readiness:
        """Make a flag at ``path``, set to ready."""
        path.write_bytes(b"\0")
        return cls(path)

    def is_ready(self) -> bool:
        """Whether the instance takes new work."""
        return self._map[0] == 0

    def drain(self) -> None:
        """Mark the instance as shutting down, for every process."""
        self._map[0] = 1


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
    runtime = Path(tempfile.mkdtemp(prefix="echod-", dir=_SHM if _usable(_SHM) else None))
    try:
        if settings.tls_enabled and settings.tls_cert is None:
            cert, key = write_self_signed(runtime)
            listeners = [
                *listeners[:-1],
                Listener("https", settings.host, settings.tls_port, cert, key),
            ]
            log.warning(
                "HTTPS uses a self-signed certificate for localhost made at start; clients "
                "must skip verification (curl -k); set --tls-cert and --tls-key for a real one"
            )
        layout = Layout.for_routes(ROUTES)
        store = MetricsStore.create(
            runtime / "metrics", layout, slots_for(len(listeners), settings.workers)
        )
        store.close()
        readiness = Readiness.create(runtime / "ready")
        loader = partial(
            _worker_app, settings, users, store.path, layout, runtime / "ready", os.getpid()
        )
        return _Supervisor(settings, listeners, loader, log_config, readiness).run()
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


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


def _usable(directory: Path) -> bool:
    return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)


def _worker_app(
    settings: Settings,
    users: Mapping[str, bytes],
    store_path: Path,
    layout: Layout,
    ready_path: Path,
    root_pid: int,
) -> EchoApp:
    """Build the app inside a worker process (granian calls this once per worker)."""
    store = MetricsStore(store_path, layout)
    app = create_app(
        settings,
        users=users,
        recorder=store.claim(),
        registry=build_registry(store, root_pid=root_pid, version=__version__),
        is_ready=Readiness(ready_path).is_ready,
    )
    # Everything made so far lives as long as the worker: keep it out of the garbage
    # collector's way, which shortens the pauses that full collections cause (p99).
    gc.collect()
    gc.freeze()
    return app


class _Supervisor:
    def __init__(
        self,
        settings: Settings,
        listeners: Sequence[Listener],
        loader: partial[EchoApp],
        log_config: dict[str, Any],
        readiness: Readiness,
    ) -> None:
        self._settings = settings
        self._listeners = listeners
        self._loader = loader
        self._log_config = log_config
        self._readiness = readiness
        self._signals: list[int] = []
        self._processes: list[BaseProcess] = []
        self._wake = -1

    def run(self) -> int:
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        self._wake = wake_read
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        previous_wakeup = signal.set_wakeup_fd(wake_write)
        try:
            context = multiprocessing.get_context("fork")
            for listener in self._listeners:
                process = context.Process(
                    target=_run_listener,
                    name=f"echod-{listener.name}",
                    args=(listener, self._settings, self._loader, self._log_config, os.getpid()),
                )
                process.start()
                self._processes.append(process)
            log.info("echod started", extra={"fields": self._started_fields()})
            failed = self._wait()
            if failed is not None:
                log.error("listener %s exited with status %s", failed.name, failed.exitcode)
            return self._shutdown(failed)
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            os.close(wake_read)
            os.close(wake_write)

    def _started_fields(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "pid": os.getpid(),
            "listeners": [listener.url for listener in self._listeners],
            "workers": self._settings.workers,
        }

    def _on_signal(self, signum: int, frame: object) -> None:  # noqa: ARG002 - signal API
        self._signals.append(signum)

    def _wait(self, timeout: float | None = None) -> BaseProcess | None:
        """Wait for a signal, a listener's exit or the timeout; return a listener that exited."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._signals:
            for process in self._processes:
                if not process.is_alive():
                    return process
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            sentinels = [process.sentinel for process in self._processes]
            multiprocessing.connection.wait([*sentinels, self._wake], remaining)
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake, 512)
        return None

    def _shutdown(self, failed: BaseProcess | None) -> int:
        self._readiness.drain()
        if failed is None:
            signum = self._signals[0]
            log.info("shutting down on %s: /ready answers 503", signal.Signals(signum).name)
            if signum == signal.SIGTERM and self._settings.drain_delay > 0:
                self._signals.clear()  # a second signal ends the drain delay early
                failed = self._wait(self._settings.drain_delay)
        for process in self._processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._settings.shutdown_timeout + KILL_GRACE
        for process in self._processes:
            process.join(max(deadline - time.monotonic(), 0.0))
            if process.pid is not None and process.is_alive():
                log.error("listener %s did not stop in time; killing it", process.name)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.join()
        statuses = {process.name: process.exitcode for process in self._processes}
        if failed is None and all(status == 0 for status in statuses.values()):
            log.info("echod stopped")
            return 0
        log.error("echod stopped after a failure", extra={"fields": {"exit_codes": statuses}})
        return 1


def _exit_with(parent: int) -> None:
    """Stop this listener when the supervisor is gone (killed, so it could not say so)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def _run_listener(
    listener: Listener,
    settings: Settings,
    loader: partial[EchoApp],
    log_config: dict[str, Any],
    supervisor: int,
) -> None:
    """Serve one listener with granian, in its own process group, until granian stops."""
    from granian.constants import HTTPModes, Interfaces, SSLProtocols  # noqa: PLC0415
    from granian.http import HTTP1Settings, HTTP2Settings  # noqa: PLC0415
    from granian.log import LogLevels  # noqa: PLC0415
    from granian.server import Server  # noqa: PLC0415

    # Its own process group: the supervisor alone decides when it stops (Ctrl-C included),
    # and can kill it with all its workers at once.
    os.setpgid(0, 0)
    signal.set_wakeup_fd(-1)
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    threading.Thread(target=_exit_with, args=(supervisor,), daemon=True).start()
    server = Server(
        "echod",
        address=listener.host,
        port=listener.port,
        interface=Interfaces.RSGI,
        workers=settings.workers,
        http=HTTPModes.auto,
        websockets=False,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(settings.header_timeout * 1000),
            max_buffer_size=settings.max_header_bytes,
        ),
        http2_settings=HTTP2Settings(max_headers_size=settings.max_header_bytes),
        ssl_cert=listener.cert,
        ssl_key=listener.key,
        ssl_protocol_min=SSLProtocols.tls12,
        respawn_failed_workers=True,
        workers_kill_timeout=math.ceil(settings.shutdown_timeout),
        log_enabled=True,
        log_level=LogLevels.debug if settings.log_level is LogLevel.DEBUG else LogLevels.warning,
        log_dictconfig=log_config,
    )
    # granian types the loader as returning a callable; an RSGI app object works as well.
    server.serve(target_loader=loader, wrap_loader=False)  # type: ignore[arg-type]
