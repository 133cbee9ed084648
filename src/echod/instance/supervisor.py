"""Supervisor: the process at the root of an instance. Signals, readiness, the listeners.

It starts one listener process per port and then waits for a stop signal or for a
listener to exit. On SIGTERM or SIGINT, ``/ready`` turns 503 and stays so for
``--drain-delay`` seconds (on SIGTERM only: Ctrl-C means stop now). The workers then
close their WebSockets, and once they have, the listeners stop accepting; requests in
flight get what is left of ``--shutdown-timeout`` to finish, listeners that overrun are
killed, and echod exits 0. A listener that fails makes echod
stop and exit 1.

SIGHUP, and a change to a file every ``--reload-interval`` seconds, reload the users and
the certificate (:mod:`echod.instance.reload`). Once shutdown has begun, SIGHUP is ignored.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from typing import TYPE_CHECKING, Any

from echod.instance.announce import announce_ready, ready_facts
from echod.instance.lifecycle import STOP_SIGNALS
from echod.instance.listener import run_listener
from echod.instance.reload import Reloader
from echod.version import __version__

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from functools import partial
    from multiprocessing.process import BaseProcess

    from echod.http.app import EchoApp
    from echod.instance.listener import Listener
    from echod.instance.material import Material, Snapshot
    from echod.instance.runtime import Runtime
    from echod.settings.config import Settings

__all__ = ["KILL_GRACE", "Supervisor"]

log = logging.getLogger("echod")

#: Seconds the supervisor waits for listeners beyond --shutdown-timeout before it kills them.
KILL_GRACE = 5.0
# Seconds between two looks at whether the workers serve yet.
_POLL = 0.02


class Supervisor:
    """Runs the listener processes until a stop signal or a failure; returns the exit status."""

    def __init__(
        self,
        settings: Settings,
        listeners: Sequence[Listener],
        loader: partial[EchoApp],
        log_config: dict[str, Any],
        runtime: Runtime,
        material: tuple[Material, Snapshot],
    ) -> None:
        """Prepare to run ``listeners``, whose workers build their app with ``loader``.

        ``material`` is what the runtime has in service, and the files it was read from.
        """
        self._settings = settings
        self._listeners = listeners
        self._loader = loader
        self._log_config = log_config
        self._runtime = runtime
        self._signals: list[int] = []
        self._hup = False
        self._stopping = False
        self._processes: list[BaseProcess] = []
        self._wake = -1
        self._reloader = Reloader(
            settings,
            runtime,
            *material,
            workers=len(listeners) * settings.workers,
            signal_listeners=self._signal_listeners,
        )

    def run(self) -> int:
        """Start the listeners, wait, shut down; 0 after a clean stop, 1 after a failure."""
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        self._wake = wake_read
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        handlers[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hup)
        previous_wakeup = signal.set_wakeup_fd(wake_write)
        try:
            context = multiprocessing.get_context("fork")
            for listener in self._listeners:
                process = context.Process(
                    target=run_listener,
                    name=f"echod-{listener.name}",
                    args=(listener, self._settings, self._loader, self._log_config, os.getpid()),
                )
                process.start()
                self._processes.append(process)
            log.info("echod started", extra={"fields": self._started_fields()})
            failed = self._wait(until=self._serving)
            if failed is None and not self._signals:
                announce_ready(ready_facts(self._settings, self._listeners))
                failed = self._serve()
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

    def _on_hup(self, signum: int, frame: object) -> None:  # noqa: ARG002 - signal API
        self._hup = not self._stopping

    def _serve(self) -> BaseProcess | None:
        """Serve and reload until a stop signal or a listener's exit; return that listener."""
        while True:
            failed = self._wait(self._reloader.wake_in(), hup=True)
            if failed is not None or self._signals:
                return failed
            if self._hup:
                self._hup = False
                self._reloader.request()
            self._reloader.step()

    def _signal_listeners(self) -> None:
        """Send SIGHUP to every listener: granian replaces its workers, one at a time."""
        for process in self._processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGHUP)

    def _serving(self) -> bool:
        """Whether every worker of every listener has started: each has claimed its slot."""
        return len(self._runtime.store.owners()) >= len(self._listeners) * self._settings.workers

    def _sockets_closed(self) -> bool:
        """Whether no worker holds a WebSocket open any more."""
        store = self._runtime.store
        return store.live_sum(store.layout.connections) == 0

    def _wait(
        self,
        timeout: float | None = None,
        until: Callable[[], bool] | None = None,
        *,
        hup: bool = False,
    ) -> BaseProcess | None:
        """Wait for a stop signal, a listener's exit, ``until()`` or the timeout.

        With ``hup``, SIGHUP ends the wait too. Returns the listener that exited, if one did.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._signals and not (hup and self._hup):
            for process in self._processes:
                if not process.is_alive():
                    return process
            if until is not None and until():
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            if until is not None:  # polled, a few times a second
                remaining = _POLL if remaining is None else min(remaining, _POLL)
            sentinels = [process.sentinel for process in self._processes]
            multiprocessing.connection.wait([*sentinels, self._wake], remaining)
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake, 512)
        return None

    def _shutdown(self, failed: BaseProcess | None) -> int:
        self._stopping = True
        self._hup = False
        self._runtime.readiness.drain()
        if failed is None:
            signum = self._signals[0]
            log.info("shutting down on %s: /ready answers 503", signal.Signals(signum).name)
            if signum == signal.SIGTERM and self._settings.drain_delay > 0:
                self._signals.clear()  # a second signal ends the drain delay early
                failed = self._wait(self._settings.drain_delay)
        deadline = time.monotonic() + self._settings.shutdown_timeout + KILL_GRACE
        if failed is None:
            # The workers close their WebSockets once the ready byte says draining; wait
            # for that, so that each is closed with its close frame and its log line,
            # before the listeners stop (which would drop them).
            self._signals.clear()
            failed = self._wait(self._settings.shutdown_timeout, until=self._sockets_closed)
        for process in self._processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
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
