"""Supervisor: the light process over ``--workers N`` serving processes. Signals, reloads, respawns.

It imports neither granian nor the app: its workers are forked from it, and each imports
what serving needs (:mod:`echod.instance.serving`) and serves every listener, the port
shared by ``SO_REUSEPORT``. The supervisor says "echod ready" once every worker serves.

A worker that exits on its own is replaced. On SIGTERM or SIGINT, ``/ready`` turns 503
and stays so for ``--drain-delay`` seconds (SIGTERM only; a second signal ends the wait);
then each worker is told to stop (SIGTERM): it ends its long requests and WebSockets, and
its requests in flight get ``--shutdown-timeout`` to finish. Workers that overrun are
killed, and echod exits 0, or 1 after a failure.

SIGHUP, and a change to a file every ``--reload-interval`` seconds, reload the material
(:mod:`echod.instance.reload`): the supervisor publishes it and sends each worker SIGHUP,
and the reload ends once every worker serves the new generation. Once shutdown has begun,
SIGHUP is ignored.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from echod.instance.announce import announce_ready, ready_facts
from echod.instance.lifecycle import STOP_SIGNALS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from multiprocessing.process import BaseProcess

    from echod.instance.listener import Listener
    from echod.instance.reload import Reloaded, Reloader
    from echod.instance.runtime import Runtime, RuntimeRef
    from echod.settings.config import Settings

__all__ = ["KILL_GRACE", "RESPAWN_DELAY", "Supervisor"]

log = logging.getLogger("echod")

#: Seconds the supervisor waits for workers beyond --shutdown-timeout before it kills them.
KILL_GRACE = 5.0
#: Seconds before a worker that exited on its own is replaced.
RESPAWN_DELAY = 1.0
#: Seconds a reload may take, beyond --shutdown-timeout, for every worker to serve it.
ROLLOUT_SLACK = 10.0
# Seconds between two looks at whether the workers serve, while waiting for them.
_POLL = 0.02


@dataclass(frozen=True, slots=True)
class _Rollout:
    """A reload published, which the workers are taking."""

    reloaded: Reloaded
    deadline: float


class Supervisor:
    """Runs ``--workers`` serving processes until a stop signal; returns the exit status."""

    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        listeners: Sequence[Listener],
        log_config: dict[str, Any],
        reloader: Reloader,
    ) -> None:
        """Run ``settings.workers`` workers serving ``listeners``, reloading with ``reloader``."""
        self._settings = settings
        self._runtime = runtime
        self._listeners = listeners
        self._log_config = log_config
        self._reloader = reloader
        self._workers: list[BaseProcess] = []
        self._signals: list[int] = []
        self._hup = False
        self._stopping = False
        self._wake = -1
        self._rollout: _Rollout | None = None
        self._respawn_at: dict[int, float] = {}

    def run(self) -> int:
        """Start the workers, serve, shut down; 0 after a clean stop, 1 after a failure."""
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        self._wake = wake_read
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        handlers[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hup)
        previous_wakeup = signal.set_wakeup_fd(wake_write)
        try:
            for slot in range(self._settings.workers):
                self._workers.append(self._spawn(slot))
            failed = self._wait(until=self._all_serving)
            if failed is None and not self._signals:
                announce_ready(ready_facts(self._settings, self._listeners))
                self._serve()
            return self._shutdown(failed)
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            os.close(wake_read)
            os.close(wake_write)

    def _spawn(self, slot: int) -> BaseProcess:
        context = multiprocessing.get_context("fork")
        process = context.Process(
            target=_worker_main,
            name=f"echod-worker-{slot + 1}",
            args=(self._settings, self._runtime.ref, self._listeners, self._log_config),
        )
        process.start()
        return process

    def _on_signal(self, signum: int, frame: object) -> None:  # noqa: ARG002 - signal API
        self._signals.append(signum)

    def _on_hup(self, signum: int, frame: object) -> None:  # noqa: ARG002 - signal API
        self._hup = not self._stopping

    def _all_serving(self) -> bool:
        """Whether every worker serves, with the material in service now."""
        generation = self._runtime.reloads.generation
        serving = self._runtime.store.generations()
        pids = [process.pid for process in self._workers]
        return all(serving.get(pid or 0, -1) == generation for pid in pids)

    def _serve(self) -> None:
        """Serve, reload and respawn until a stop signal."""
        while True:
            timeout = self._reloader.wake_in()
            if self._rollout is not None or self._respawn_at:
                timeout = _POLL if timeout is None else min(timeout, _POLL)
            self._wait(timeout, hup=True)
            if self._signals:
                return
            self._respawn_due()
            if self._hup:
                self._hup = False
                self._reloader.request()
            if self._rollout is not None:
                self._follow(self._rollout)
            elif (reloaded := self._reloader.step()) is not None:
                self._rollout = _Rollout(
                    reloaded, time.monotonic() + self._settings.shutdown_timeout + ROLLOUT_SLACK
                )
                self._signal_workers(signal.SIGHUP)

    def _follow(self, rollout: _Rollout) -> None:
        """End the rollout once every worker serves its generation, or once it is overdue."""
        serving = self._runtime.store.generations()
        pids = [process.pid or 0 for process in self._workers if process.is_alive()]
        if all(serving.get(pid, -1) >= rollout.reloaded.generation for pid in pids):
            self._rollout = None
            self._reloader.done(rollout.reloaded)
        elif time.monotonic() > rollout.deadline:
            self._rollout = None
            self._reloader.failed(
                "the workers did not all serve the new files in time; they are in service "
                "for the workers that start from now on"
            )

    def _respawn_due(self) -> None:
        """Replace the workers that exited on their own, once their delay has passed."""
        now = time.monotonic()
        for slot, process in enumerate(self._workers):
            if process.is_alive() or self._stopping:
                continue
            if slot not in self._respawn_at:
                self._respawn_at[slot] = now + RESPAWN_DELAY
                log.error(
                    "worker %s exited with status %s; replacing it", process.pid, process.exitcode
                )
            if now >= self._respawn_at[slot]:
                del self._respawn_at[slot]
                self._workers[slot] = self._spawn(slot)

    def _signal_workers(self, signum: int) -> None:
        for process in self._workers:
            if process.pid is not None and process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def _wait(
        self,
        timeout: float | None = None,
        until: Callable[[], bool] | None = None,
        *,
        hup: bool = False,
    ) -> str | None:
        """Wait for a stop signal, ``until()``, a worker's exit or the timeout.

        With ``hup``, SIGHUP ends the wait too. Before every worker serves, a worker's
        exit is a failure, whose reason is returned; afterwards it only ends the wait.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._signals and not (hup and self._hup):
            if until is not None:
                dead = next((process for process in self._workers if not process.is_alive()), None)
                if dead is not None:
                    return f"worker {dead.pid} exited with status {dead.exitcode} as it started"
                if until():
                    return None
            elif any(
                not process.is_alive() and slot not in self._respawn_at
                for slot, process in enumerate(self._workers)
            ):
                return None  # a worker just exited: the caller schedules its replacement
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            if until is not None:  # polled, a few times a second
                remaining = _POLL if remaining is None else min(remaining, _POLL)
            live = [process.sentinel for process in self._workers if process.is_alive()]
            multiprocessing.connection.wait([*live, self._wake], remaining)
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake, 512)
        return None

    def _shutdown(self, failed: str | None) -> int:
        self._stopping = True
        self._hup = False
        self._runtime.readiness.drain()
        if failed is None:
            signum = self._signals[0]
            log.info("shutting down on %s: /ready answers 503", signal.Signals(signum).name)
            if signum == signal.SIGTERM and self._settings.drain_delay > 0:
                self._signals.clear()  # a second signal ends the drain delay early
                self._wait(self._settings.drain_delay)
        else:
            log.error("%s", failed)
        deadline = time.monotonic() + self._settings.shutdown_timeout + KILL_GRACE
        self._signal_workers(signal.SIGTERM)
        for process in self._workers:
            process.join(max(deadline - time.monotonic(), 0.0))
            if process.pid is not None and process.is_alive():
                log.error("worker %s did not stop in time; killing it", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.join()
        statuses = [process.exitcode for process in self._workers]
        return 0 if failed is None and all(status == 0 for status in statuses) else 1


def _worker_main(
    settings: Settings,
    runtime: RuntimeRef,
    listeners: Sequence[Listener],
    log_config: dict[str, Any],
) -> None:
    """A worker process: its own process group, then serve (what it imports comes here)."""
    os.setpgid(0, 0)  # Ctrl-C reaches the supervisor, which decides for all
    signal.set_wakeup_fd(-1)
    for sig in (*STOP_SIGNALS, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    supervisor = os.getppid()
    threading.Thread(target=_exit_with, args=(supervisor,), daemon=True).start()
    from echod.instance.serving import run_worker  # noqa: PLC0415 - the worker's imports

    sys.exit(run_worker(settings, runtime, listeners, log_config))


def _exit_with(supervisor: int) -> None:
    """Stop this worker when the supervisor is gone (killed, so it could not say so)."""
    while os.getppid() == supervisor:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
