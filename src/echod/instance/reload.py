"""Reload: users, certificates and key sets in service again, without downtime, on SIGHUP.

A reload reads every file again and checks all of them (:mod:`echod.instance.material`).
If one is bad, the material in service stays, the reason is logged at error level and the
failure is counted. If none changed, the reload is done. Otherwise the runtime
publishes the new material, and each listener gets SIGHUP: granian replaces its workers
one at a time, and each new worker reads the new material as it starts
(:mod:`echod.instance.worker`). The reload ends once no worker from before it is left; one
"reloaded" line then says what changed.

Every ``--reload-interval`` seconds the files are read again; one that changed (another
inode or modification time, through symlinks, or other content) starts a reload.
Only one reload runs at a time: SIGHUPs and changes that come during one make one more
reload after it, however many there were.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from echod.instance.lifecycle import RESPAWN_INTERVAL
from echod.instance.material import build, read, summary
from echod.settings.config import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from echod.instance.material import Material, Snapshot
    from echod.instance.runtime import Runtime
    from echod.settings.config import Settings

__all__ = ["ROLLOUT_POLL", "ROLLOUT_SLACK", "Reloader"]

log = logging.getLogger("echod")

#: Seconds between two looks at the workers while a reload replaces them.
ROLLOUT_POLL = 0.05
#: Seconds a reload may take beyond what granian needs to replace every worker; past
#: them it is logged and counted as failed, and the next one may start.
ROLLOUT_SLACK = 10.0


@dataclass(frozen=True, slots=True)
class _Rollout:
    """A reload whose new material is published, while granian replaces the workers."""

    before: frozenset[int]
    changed: list[str]
    started: float
    deadline: float


class Reloader:
    """Runs the reloads of one instance: one at a time, in the supervisor."""

    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        material: Material,
        seen: Snapshot,
        *,
        workers: int,
        signal_listeners: Callable[[], None],
    ) -> None:
        """Start with ``material`` in service, read from the files as ``seen``.

        ``workers`` is how many workers serve in all; ``signal_listeners`` sends each
        listener SIGHUP.
        """
        self._settings = settings
        self._runtime = runtime
        self._material = material
        self._seen = seen
        self._workers = workers
        self._signal_listeners = signal_listeners
        self._requested = False
        self._rollout: _Rollout | None = None
        interval = settings.reload_interval
        self._next_look = time.monotonic() + interval if interval > 0 else math.inf
        # How long granian takes at most to replace every worker, one after another.
        self._rollout_limit = workers * (RESPAWN_INTERVAL + math.ceil(settings.shutdown_timeout))
        runtime.reloads.started(time.time(), _not_after(material))

    def request(self) -> None:
        """Reload as soon as no other reload runs (on SIGHUP)."""
        self._requested = True

    def wake_in(self) -> float | None:
        """Seconds until :meth:`step` has something to do, or None if only a request can."""
        if self._rollout is not None:
            return ROLLOUT_POLL
        if self._requested:
            return 0.0
        if math.isinf(self._next_look):
            return None
        return max(self._next_look - time.monotonic(), 0.0)

    def step(self) -> None:
        """Follow the reload that runs, or start one if one is due."""
        if self._rollout is not None and not self._rolled_out(self._rollout):
            return
        now = time.monotonic()
        if self._requested:
            self._requested = False
            self._reload(read(self._settings))
        elif now >= self._next_look:
            snapshot = read(self._settings)
            if snapshot != self._seen:
                self._reload(snapshot)
        if now >= self._next_look:
            self._next_look = now + self._settings.reload_interval

    def _reload(self, snapshot: Snapshot) -> None:
        self._seen = snapshot
        try:
            material = build(self._settings, snapshot, self._material)
        except ConfigError as error:
            self._failed(f"{error}; the files in service stay")
            return
        changed = material.changes(self._material)
        if not changed:
            self._succeeded(material, [], 0.0)
            return
        before = frozenset(self._runtime.store.owners())
        self._runtime.publish(material)
        self._material = material
        self._signal_listeners()
        started = time.monotonic()
        deadline = started + self._rollout_limit + ROLLOUT_SLACK
        self._rollout = _Rollout(before, changed, started, deadline)

    def _rolled_out(self, rollout: _Rollout) -> bool:
        """Whether ``rollout`` is over: done, or given up on. Logs and counts it then."""
        owners = self._runtime.store.owners()
        if len(owners) >= self._workers and rollout.before.isdisjoint(owners):
            self._rollout = None
            self._succeeded(self._material, rollout.changed, time.monotonic() - rollout.started)
            return True
        if time.monotonic() > rollout.deadline:
            self._rollout = None
            self._failed(
                f"the workers were not all replaced within "
                f"{rollout.deadline - rollout.started:.0f} s; the new files are in service "
                f"for the workers that start from now on"
            )
            return True
        return False

    def _failed(self, reason: str) -> None:
        self._runtime.reloads.failed(time.time())
        log.error("reload failed: %s", reason)

    def _succeeded(self, material: Material, changed: list[str], seconds: float) -> None:
        self._runtime.reloads.succeeded(time.time(), _not_after(material))
        fields = {"changed": changed, **summary(material).fields()}
        fields["duration_ms"] = round(seconds * 1000.0, 1)
        log.info("reloaded", extra={"fields": fields})


def _not_after(material: Material) -> float | None:
    not_after = summary(material).not_after
    return None if not_after is None else not_after.timestamp()
