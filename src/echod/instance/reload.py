"""Reload: users, certificates and key sets in service again, without downtime, on SIGHUP.

A reload reads every file again and has all of them checked
(:mod:`echod.instance.checker`). If one is bad, the material in service stays, the reason
is logged at error level and the failure is counted. If none changed, the reload is done.
Otherwise the new material is published in the runtime directory, under the next
generation, and the serving processes put it in service
(:mod:`echod.instance.serving`): new users at once, a new certificate by a new HTTPS
server started beside the old one before that one stops. The reload ends once every
serving process serves the new generation; one "reloaded" line then says what changed.

Every ``--reload-interval`` seconds the files are read again; one that changed (another
inode or modification time, through symlinks, or other content) starts a reload. Only
one reload runs at a time: SIGHUPs and changes that come during one make one more reload
after it, however many there were.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from echod.instance.checker import check
from echod.instance.material import read
from echod.settings.config import ConfigError

if TYPE_CHECKING:
    from echod.instance.material import Material, Snapshot, Summary
    from echod.instance.runtime import Runtime
    from echod.settings.config import Settings

__all__ = ["Reloaded", "Reloader"]

log = logging.getLogger("echod")


@dataclass(frozen=True, slots=True)
class Reloaded:
    """A reload whose new material is published: the serving processes are to take it."""

    material: Material
    summary: Summary
    #: The flags of the files that changed.
    changed: list[str]
    #: When the reload began, on the monotonic clock.
    began: float
    #: The generation the material is published under.
    generation: int


class Reloader:
    """Runs the reloads of one instance, one at a time, in the process that reloads."""

    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        material: Material,
        summary: Summary,
        seen: Snapshot,
    ) -> None:
        """Start with ``material`` in service (``summary`` says what it holds), read as ``seen``."""
        self._settings = settings
        self._runtime = runtime
        #: The material in service.
        self.material = material
        self._seen = seen
        self._requested = False
        interval = settings.reload_interval
        self._next_look = time.monotonic() + interval if interval > 0 else math.inf
        runtime.reloads.started(time.time(), summary.not_after)

    def request(self) -> None:
        """Reload as soon as no other reload runs (on SIGHUP)."""
        self._requested = True

    def wake_in(self) -> float | None:
        """Seconds until :meth:`step` has something to do, or None if only a request can."""
        if self._requested:
            return 0.0
        if math.isinf(self._next_look):
            return None
        return max(self._next_look - time.monotonic(), 0.0)

    def step(self) -> Reloaded | None:
        """Reload if asked to, or if a file changed at a look that is due.

        Returns the published material that the serving processes are to take, or None
        when there is nothing to put in service (nothing due, a failure, no change).
        Blocks while the files are checked (about a tenth of a second).
        """
        now = time.monotonic()
        reloaded = None
        if self._requested:
            self._requested = False
            reloaded = self._reload(read(self._settings), now)
        elif now >= self._next_look:
            snapshot = read(self._settings)
            if snapshot != self._seen:
                reloaded = self._reload(snapshot, now)
        if now >= self._next_look:
            self._next_look = now + self._settings.reload_interval
        return reloaded

    def done(self, reloaded: Reloaded) -> None:
        """The serving processes all serve ``reloaded``: log it and count a success."""
        self._succeeded(reloaded.summary, reloaded.changed, time.monotonic() - reloaded.began)

    def failed(self, reason: str) -> None:
        """A reload failed for ``reason``: log it and count a failure."""
        self._runtime.reloads.failed(time.time())
        log.error("reload failed: %s", reason)

    def _reload(self, snapshot: Snapshot, began: float) -> Reloaded | None:
        self._seen = snapshot
        try:
            material, summary = check(self._settings.tls_enabled, snapshot, self.material)
        except ConfigError as error:
            self.failed(f"{error}; the files in service stay")
            return None
        changed = material.changes(self.material)
        if not changed:
            self._succeeded(summary, [], time.monotonic() - began)
            return None
        try:
            self._runtime.publish(material)
        except OSError as error:
            self.failed(f"the new files cannot be put in the runtime directory: {error}")
            return None
        self.material = material
        generation = self._runtime.reloads.published()
        return Reloaded(material, summary, changed, began, generation)

    def _succeeded(self, summary: Summary, changed: list[str], seconds: float) -> None:
        self._runtime.reloads.succeeded(time.time(), summary.not_after)
        fields = {"changed": changed, **summary.fields(), "duration_ms": round(seconds * 1000, 1)}
        log.info("reloaded", extra={"fields": fields})
