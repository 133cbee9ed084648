"""Serving: one process that serves every listener, with one app, on one event loop.

With ``--workers 1`` (the default) this is the whole instance: it reloads, drains and
stops itself. With ``--workers N`` it is one of N such processes under a supervisor
(:mod:`echod.instance.supervisor`), which reloads and drains for all of them.

The process builds the app once, from the material in service in the runtime directory,
then starts one embedded granian server per listener (:mod:`echod.instance.listener`) on
its own event loop. On a reload it puts the new material in service in place: new users
at once, and a new certificate by a new HTTPS server, started on the port beside the old
one (``SO_REUSEPORT``) before the old one stops, so that no connection is refused. The
connections still queued on the old server's socket when it closes are lost unless the
kernel moves them to the new one (``net.ipv4.tcp_migrate_req = 1``).

On SIGTERM or SIGINT, ``/ready`` turns 503 and stays so for ``--drain-delay`` seconds
(SIGTERM only: Ctrl-C means stop now; a second signal ends the wait). Then the long
requests end and the WebSockets close (:mod:`echod.http.drain`), the servers stop
accepting, and the requests in flight get ``--shutdown-timeout`` to finish. A server
that ends on its own (granian failed) makes the process exit 1: with one process, the
orchestrator restarts the instance; under a supervisor, it is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import logging
import signal
import socket
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import rloop  # type: ignore[import-untyped]

from echod.http.factory import create_app
from echod.instance.announce import announce_ready, ready_facts
from echod.instance.lifecycle import STOP_SIGNALS
from echod.instance.listener import granian_server
from echod.instance.runtime import Runtime
from echod.instance.users import parse_users
from echod.state.local import LocalStore
from echod.telemetry.collectors import build_registry
from echod.telemetry.line_writer import stdout_writer
from echod.version import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

    from granian.server.embed import Server

    from echod.http.app import EchoApp
    from echod.instance.listener import Listener
    from echod.instance.reload import Reloaded, Reloader
    from echod.instance.runtime import RuntimeRef
    from echod.settings.config import Settings
    from echod.state.model import Store
    from echod.telemetry.metric_layout import Recorder

__all__ = ["KILL_GRACE", "Role", "Serving", "run_worker"]

log = logging.getLogger("echod")

#: Seconds a server may take beyond ``--shutdown-timeout`` to stop before echod gives up.
KILL_GRACE = 5.0
#: Seconds a new server has to accept connections before echod says it failed.
START_TIMEOUT = 10.0
# Seconds between two tries to connect to a server that is starting.
_POLL = 0.01


class Role(enum.Enum):
    """What a serving process does besides serving."""

    #: The whole instance: it reloads, drains and stops itself, and says when it serves.
    INSTANCE = "instance"
    #: One of a supervisor's workers: it takes what the supervisor publishes, and stops.
    WORKER = "worker"


@dataclass
class _Running:
    """A listener's server, its copy of the app, and the task that runs it."""

    listener: Listener
    app: EchoApp
    server: Server
    task: asyncio.Task[None]


class Serving:
    """Serves every listener in this process until told to stop; returns the exit status."""

    def __init__(
        self,
        settings: Settings,
        runtime: RuntimeRef,
        listeners: Sequence[Listener],
        log_config: dict[str, Any],
        *,
        role: Role,
        reloader: Reloader | None = None,
    ) -> None:
        """Serve ``listeners``; as the whole instance, reload with ``reloader``."""
        self._settings = settings
        self._ref = runtime
        self._listeners = list(listeners)
        self._log_config = log_config
        self._role = role
        self._reloader = reloader
        self._servers: dict[str, _Running] = {}
        self._signals: asyncio.Queue[int] = asyncio.Queue()
        self._hup = asyncio.Event()
        self._stopping = False
        self._app: EchoApp | None = None
        self._state: Store | None = None
        self._runtime: Runtime | None = None
        self._generation = 0
        self._tls: bytes | None = None
        self._recorder: Recorder | None = None
        self._first_signal: int = signal.SIGTERM
        self._started = 0

    def run(self) -> int:
        """Serve on an event loop of its own until stopped; 0 after a clean stop, 1 if not."""
        loop: asyncio.AbstractEventLoop = rloop.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            status: int = loop.run_until_complete(self._serve())
            return status
        finally:
            loop.close()

    async def _serve(self) -> int:
        loop = asyncio.get_running_loop()
        runtime = self._runtime = Runtime(self._ref)
        recorder = self._recorder = runtime.store.claim()
        writer = stdout_writer()
        writer.bind(loop)
        writer.count_drops(recorder.lines_dropped)
        self._generation = runtime.reloads.generation
        self._tls = runtime.tls_material()
        state = self._state = open_state(self._settings, self._ref)
        app = self._app = create_app(
            self._settings,
            users=parse_users(runtime.users().decode(), "the users in service"),
            recorder=recorder,
            registry=build_registry(
                runtime.store,
                root_pid=self._ref.supervisor,
                version=__version__,
                reloads=runtime.reloads,
            ),
            is_ready=runtime.readiness.is_ready,
            instance_id=self._ref.instance,
            jwks=runtime.jwks(),
            state=state,
        )
        app.start(loop)
        # Everything made so far lives as long as the process: keep it out of the garbage
        # collector's way, which shortens the pauses that full collections cause (p99).
        gc.collect()
        gc.freeze()
        for sig in (*STOP_SIGNALS, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            for listener in self._listeners:
                await self._start(listener)
        except OSError as error:
            log.error("cannot serve: %s", error)  # noqa: TRY400 - the reason is the message
            return await self._shut(failed=True)
        recorder.serving(self._generation)
        if self._role is Role.INSTANCE:
            announce_ready(ready_facts(self._settings, self._listeners))
        failed = await self._until_stopped()
        return await self._shut(failed=failed)

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            if not self._stopping:
                self._hup.set()
            return
        self._signals.put_nowait(signum)

    async def _start(self, listener: Listener) -> _Running:
        """Start ``listener``'s server and wait until it accepts connections.

        Raises:
            OSError: it did not start, or did not accept within :data:`START_TIMEOUT`.
        """
        if self._app is None:
            raise RuntimeError("the app is made before any server starts")
        self._started += 1
        app = self._app.for_server(f"{listener.name}-{self._started}")
        server = granian_server(listener, app, self._settings, self._log_config)
        running = _Running(listener, app, server, asyncio.ensure_future(server.serve()))
        deadline = time.monotonic() + START_TIMEOUT
        while not (await _bound(server) and await _accepts(listener)):
            if running.task.done() or time.monotonic() > deadline:
                running.server.stop()  # type: ignore[no-untyped-call]
                await asyncio.wait({running.task}, timeout=1.0)
                raise OSError(f"{listener.url} did not start accepting connections")
            await asyncio.sleep(_POLL)
        self._servers[listener.name] = running
        return running

    async def _until_stopped(self) -> bool:
        """Serve, and reload, until a stop signal or a server's end; True if one ended."""
        signals = asyncio.ensure_future(self._signals.get())
        reloads = asyncio.ensure_future(self._reloads())
        try:
            while True:
                tasks = {running.task for running in self._servers.values()}
                done, _ = await asyncio.wait(
                    {signals, reloads, *tasks}, return_when=asyncio.FIRST_COMPLETED
                )
                if signals in done:
                    self._first_signal = signals.result()
                    return False
                if reloads in done:
                    reloads.result()  # it runs for as long as the process: this raised
                ended = [each for each in self._servers.values() if each.task in done]
                if ended:
                    log.error("the %s server stopped on its own", ended[0].listener.name)
                    return True
        finally:
            for task in (signals, reloads):
                task.cancel()

    async def _reloads(self) -> None:
        """Put new material in service: the reloader's, or the supervisor's on SIGHUP."""
        while True:
            wait = None if self._reloader is None else self._reloader.wake_in()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._hup.wait()
            hup = self._hup.is_set()
            self._hup.clear()
            if self._reloader is None:
                if hup:
                    await self._take_published()
                continue
            if hup:
                self._reloader.request()
            reloaded = await asyncio.to_thread(self._reloader.step)
            if reloaded is not None:
                await self._put_in_service(reloaded)

    async def _put_in_service(self, reloaded: Reloaded) -> None:
        """As the whole instance: serve what a reload published, then say it is done."""
        try:
            await self._take_published()
        except OSError as error:
            if self._reloader is not None:
                self._reloader.failed(f"the new certificate could not be served: {error}")
            return
        if self._reloader is not None:
            self._reloader.done(reloaded)

    async def _take_published(self) -> None:
        """Serve the material published in the runtime directory, if it is newer.

        Raises:
            OSError: the new HTTPS server did not start; the old one still serves.
        """
        runtime, app = self._runtime, self._app
        if runtime is None or app is None:
            return
        generation = runtime.reloads.generation
        if generation == self._generation:
            return
        app.use_users(parse_users(runtime.users().decode(), "the users in service"))
        if (jwks := runtime.jwks()) is not None:
            app.use_key_set(jwks)
        tls = runtime.tls_material()
        if tls != self._tls and (old := self._servers.get("https")) is not None:
            files = runtime.tls_files()
            listener = replace(old.listener, client_ca=files.client_ca)
            await self._start(listener)  # beside the old one, on the same port
            await old.app.replacing()
            await _stop_server(old, self._settings.shutdown_timeout)
            self._tls = tls
        self._generation = generation
        if self._recorder is not None:
            self._recorder.serving(generation)

    async def _shut(self, *, failed: bool) -> int:
        """Drain if asked to, end the long requests, stop the servers; the exit status."""
        self._stopping = True
        runtime, app = self._runtime, self._app
        if runtime is None or app is None:
            return 1
        if not failed and self._role is Role.INSTANCE:
            signum = self._first_signal
            runtime.readiness.drain()
            log.info("shutting down on %s: /ready answers 503", signal.Signals(signum).name)
            if signum == signal.SIGTERM and self._settings.drain_delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._settings.drain_delay):
                        await self._signals.get()  # a second signal ends the wait early
        await app.stop()
        stopped = await asyncio.gather(
            *(
                _stop_server(running, self._settings.shutdown_timeout)
                for running in self._servers.values()
            )
        )
        app.close()
        if self._state is not None:
            self._state.close()
        return 1 if failed or not all(stopped) else 0


async def _stop_server(running: _Running, shutdown_timeout: float) -> bool:
    """Stop a server: no new connections, then ``shutdown_timeout`` for the requests in flight.

    Requests that overrun are cut, with a warning: that is the timeout doing its work.
    Returns False only when the server failed as it stopped.
    """
    running.server.stop()  # type: ignore[no-untyped-call]
    done, _ = await asyncio.wait({running.task}, timeout=shutdown_timeout)
    if not done:
        log.warning(
            "requests on the %s server refused to gracefully stop within --shutdown-timeout "
            "(%g s): they are cut",
            running.listener.name,
            shutdown_timeout,
        )
        for worker in list(running.server.wrks):
            worker.kill()  # type: ignore[no-untyped-call]
        done, _ = await asyncio.wait({running.task}, timeout=KILL_GRACE)
        return bool(done)
    if not running.task.cancelled() and (error := running.task.exception()) is not None:
        log.error("the %s server failed as it stopped: %r", running.listener.name, error)
        return False
    return True


async def _bound(server: Server) -> bool:
    """Whether ``server``'s worker has bound its socket.

    granian's embedded worker binds its socket in its first step, before it first waits:
    a worker task that was started and has let the loop run twice since is bound.
    """
    if not server.wrks:
        return False
    for _ in range(2):
        await asyncio.sleep(0)
    return all(worker.is_alive() for worker in server.wrks)  # type: ignore[no-untyped-call]


async def _accepts(listener: Listener) -> bool:
    """Whether ``listener``'s port takes a connection now (its server is listening)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(listener.host, listener.host)  # noqa: S104 - compared, not bound
    return await asyncio.to_thread(_connects, host, listener.port)


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def open_state(settings: Settings, runtime: RuntimeRef) -> Store:
    """The store of the scenarios' state: the runtime directory's, or the server of --state."""
    if settings.state is None:
        return LocalStore(runtime.state_path)
    from echod.state.remote import RemoteStore  # noqa: PLC0415 - only with --state redis://

    return RemoteStore(settings.state, settings.state_prefix, settings.state_password)


def run_worker(
    settings: Settings,
    runtime: RuntimeRef,
    listeners: Sequence[Listener],
    log_config: dict[str, Any],
) -> int:
    """The body of a supervisor's worker process: serve until told to stop."""
    return Serving(settings, runtime, listeners, log_config, role=Role.WORKER).run()
