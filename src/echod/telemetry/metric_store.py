"""Metric store: the memory-mapped files of numbers that the processes of an instance share.

Each worker process counts its requests into a slot of its own in the metrics file,
laid out by :mod:`echod.telemetry.metric_layout`, and ``/metrics`` in any process sums
the slots. The process that reloads keeps the record of reloads in a file of its own
(:class:`ReloadRecord`). :mod:`echod.instance.runtime` decides where the files live;
this module makes them, maps them, and is all that can be done with them.
"""

from __future__ import annotations

import fcntl
import math
import mmap
import os
from typing import TYPE_CHECKING

from echod.procfs import alive
from echod.telemetry.metric_layout import Recorder

if TYPE_CHECKING:
    from pathlib import Path

    from echod.telemetry.metric_layout import Layout

__all__ = ["MetricsStore", "ReloadRecord", "reserve", "slots_for"]


class MetricsStore:
    """The memory-mapped file of metric slots, one per worker process.

    A slot outlives its process: a worker that dies leaves its counts behind, and its
    replacement takes the slot over and adds to them, so counters never go down.
    """

    def __init__(self, path: Path, layout: Layout) -> None:
        """Map the store at ``path``, which was made for ``layout``."""
        self.path = path
        self.layout = layout
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, os.fstat(self._fd).st_size)
        self._values = memoryview(self._map).cast("d")
        self.slots = len(self._values) // layout.slot_size

    @classmethod
    def create(cls, path: Path, layout: Layout, slots: int) -> MetricsStore:
        """Make a zeroed store at ``path`` with room for ``slots`` processes."""
        reserve(path, slots * layout.slot_size * 8)
        return cls(path, layout)

    def claim(self, pid: int | None = None) -> Recorder:
        """Take a slot for process ``pid`` (this one by default): a free one, or a dead one's.

        Raises:
            RuntimeError: every slot belongs to a live process.
        """
        pid = os.getpid() if pid is None else pid
        size = self.layout.slot_size
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            for base in range(0, self.slots * size, size):
                owner = int(self._values[base])
                if owner in {0, pid} or not alive(owner):
                    self._values[base] = float(pid)
                    # Counters carry over to the replacement; a gauge starts afresh.
                    self._values[base + self.layout.connections] = 0.0
                    self._values[base + self.layout.generation] = -1.0
                    return Recorder(self._values, base, self.layout)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        raise RuntimeError(f"all {self.slots} metric slots in {self.path} are taken")

    def owners(self) -> list[int]:
        """The live processes that own a slot."""
        size = self.layout.slot_size
        owners = (int(self._values[base]) for base in range(0, self.slots * size, size))
        return [pid for pid in owners if pid and alive(pid)]

    def generations(self) -> dict[int, int]:
        """Each live process that owns a slot, and the generation it serves (-1: not yet)."""
        size = self.layout.slot_size
        found = {}
        for base in range(0, self.slots * size, size):
            pid = int(self._values[base])
            if pid and alive(pid):
                found[pid] = int(self._values[base + self.layout.generation])
        return found

    def totals(self) -> list[float]:
        """One slot's worth of values, summed over every slot that was ever claimed."""
        size = self.layout.slot_size
        values = self._values
        rows = [
            values[base + 1 : base + size].tolist()
            for base in range(0, self.slots * size, size)
            if values[base]
        ]
        if not rows:
            return [0.0] * size
        return [0.0, *map(sum, zip(*rows, strict=True))]

    def live_sum(self, index: int) -> float:
        """The value at ``index`` in each slot, summed over the slots of live processes.

        For gauges: a worker that died leaves its counts behind, but not its connections.
        """
        size = self.layout.slot_size
        values = self._values
        return sum(
            values[base + index]
            for base in range(0, self.slots * size, size)
            if values[base] and alive(int(values[base]))
        )

    def close(self) -> None:
        """Unmap the store."""
        self._values.release()
        self._map.close()
        os.close(self._fd)


def reserve(path: Path, size: int) -> None:
    """Make the file ``path`` of ``size`` zero bytes, every one of them allocated now.

    A mapped file whose pages are allocated only when first written to kills the
    process that writes (SIGBUS) when its filesystem is full; one allocated at once
    fails here, as an error that can be reported.

    Raises:
        OSError: the file exists already, or there is no room for it (``ENOSPC``).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)


def slots_for(workers: int) -> int:
    """How many slots an instance needs: one per serving process, with room for respawns."""
    return 4 * workers + 8


class ReloadRecord:
    """The record of reloads, which ``/metrics`` in every serving process reads.

    Six floats: the reloads that succeeded and that failed, whether the last one
    succeeded (1 or 0), when it ended (Unix time), when the certificate in service
    expires (NaN without HTTPS), and the generation of the material published. Only the
    process that reloads (the instance, or the supervisor) writes it, and it lives as
    long as the instance, so that its counts survive every reload.
    """

    _SUCCESSES, _FAILURES, _LAST_SUCCESS, _LAST_TIME, _NOT_AFTER, _GENERATION = range(6)
    _SIZE = 6
    #: The bytes the record takes.
    SIZE = _SIZE * 8

    def __init__(self, path: Path) -> None:
        """Map the record at ``path``."""
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, self._SIZE * 8)
        self._values = memoryview(self._map).cast("d")

    @classmethod
    def create(cls, path: Path) -> ReloadRecord:
        """Make a record at ``path``: no reloads yet, no certificate."""
        reserve(path, cls._SIZE * 8)
        record = cls(path)
        record._values[cls._NOT_AFTER] = math.nan
        return record

    def started(self, when: float, not_after: float | None) -> None:
        """The material loaded at start is in service: a success that is not a reload."""
        self._values[self._LAST_SUCCESS] = 1.0
        self._values[self._LAST_TIME] = when
        self._values[self._NOT_AFTER] = math.nan if not_after is None else not_after

    def succeeded(self, when: float, not_after: float | None) -> None:
        """A reload put its material in service at ``when``."""
        self._values[self._SUCCESSES] += 1.0
        self.started(when, not_after)

    def failed(self, when: float) -> None:
        """A reload failed at ``when``: the material in service stays, and so does its end."""
        self._values[self._FAILURES] += 1.0
        self._values[self._LAST_SUCCESS] = 0.0
        self._values[self._LAST_TIME] = when

    @property
    def generation(self) -> int:
        """How many times material was published: 0 at start, one more at each change."""
        return int(self._values[self._GENERATION])

    def published(self) -> int:
        """New material is in the runtime directory: the next generation. Returns it."""
        self._values[self._GENERATION] += 1.0
        return self.generation

    @property
    def successes(self) -> float:
        """Reloads that put their material in service."""
        return self._values[self._SUCCESSES]

    @property
    def failures(self) -> float:
        """Reloads that kept the material in service because of a bad file."""
        return self._values[self._FAILURES]

    @property
    def last_success(self) -> float:
        """1 if the last reload (or the start) succeeded, 0 if it failed."""
        return self._values[self._LAST_SUCCESS]

    @property
    def last_time(self) -> float:
        """When the last reload ended, or echod started, in Unix time."""
        return self._values[self._LAST_TIME]

    @property
    def cert_not_after(self) -> float | None:
        """When the certificate in service expires, in Unix time; None without HTTPS."""
        value = self._values[self._NOT_AFTER]
        return None if math.isnan(value) else value

    def close(self) -> None:
        """Unmap the record."""
        self._values.release()
        self._map.close()
        os.close(self._fd)
