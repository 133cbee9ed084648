"""Metrics: their names, labels and buckets, and the shared memory every process counts into.

Each worker process claims a slot in one memory-mapped file and adds its requests to
it: a few float additions per request, where prometheus_client's multiprocess mode
would write three files. ``/metrics`` in any process sums every slot, so it reports the
whole instance (all workers of both listeners). A slot outlives its process: a worker
that dies leaves its counts behind and its replacement adds to them, so counters never
go down. prometheus_client still does the rest: the registry, the exposition formats
and the process metrics, which are summed over echod's processes.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import time
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from prometheus_client.metrics_core import Metric

__all__ = [
    "BUCKETS_MS",
    "METHODS",
    "OTHER_METHOD",
    "STATUSES",
    "UNMATCHED_PATH",
    "Layout",
    "MetricsStore",
    "Recorder",
    "build_registry",
    "render",
    "slots_for",
]

REQUESTS_NAME = "http_requests_total"
DURATION_NAME = "http_request_duration_milliseconds"
#: Histogram buckets, in milliseconds (the metric's unit), from 0.1 ms to 10 s.
BUCKETS_MS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
#: The methods counted by name; any other method is counted as :data:`OTHER_METHOD`.
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
OTHER_METHOD = "other"
#: The ``path`` label of a request to a path that no route has.
UNMATCHED_PATH = "unmatched"
#: Seconds between two readings of the processes' PSS, which walks every memory mapping.
PSS_REFRESH = 5.0
#: Every status echod answers with (499: the client went away before the answer).
STATUSES = (200, 400, 401, 404, 405, 413, 415, 499, 500, 503)


@dataclass(frozen=True, slots=True)
class Layout:
    """The label values of ``http_requests_total``: each combination has a fixed place."""

    paths: tuple[str, ...]
    statuses: tuple[int, ...] = STATUSES
    methods: tuple[str, ...] = (*METHODS, OTHER_METHOD)

    @classmethod
    def for_routes(cls, routes: Iterable[str]) -> Layout:
        """Lay out the routes' paths plus :data:`UNMATCHED_PATH`."""
        return cls(paths=(*routes, UNMATCHED_PATH))

    @property
    def series(self) -> int:
        """The number of counter series one slot holds."""
        return len(self.statuses) * len(self.methods) * len(self.paths)

    @property
    def slot_size(self) -> int:
        """Floats per slot: the owner's pid, the counters, the buckets (and +Inf), the sum."""
        return 1 + self.series + len(BUCKETS_MS) + 2


class MetricsStore:
    """The memory-mapped file of counters, one slot per worker process."""

    def __init__(self, path: Path, layout: Layout) -> None:
        """Map the store at ``path``, which :meth:`create` made with the same layout."""
        self.path = path
        self.layout = layout
        self._fd = os.open(path, os.O_RDWR)
        size = os.fstat(self._fd).st_size
        self._map = mmap.mmap(self._fd, size)
        self._values = memoryview(self._map).cast("d")
        self.slots = len(self._values) // layout.slot_size

    @classmethod
    def create(cls, path: Path, layout: Layout, slots: int) -> MetricsStore:
        """Make a zeroed store at ``path`` with room for ``slots`` processes."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, slots * layout.slot_size * 8)
        finally:
            os.close(fd)
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
            for slot in range(self.slots):
                owner = int(self._values[slot * size])
                if owner in {0, pid} or not _alive(owner):
                    self._values[slot * size] = float(pid)
                    return Recorder(self._values, slot * size, self.layout)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        raise RuntimeError(f"all {self.slots} metric slots in {self.path} are taken")

    def owners(self) -> list[int]:
        """The live processes that own a slot."""
        size = self.layout.slot_size
        owners = (int(self._values[slot * size]) for slot in range(self.slots))
        return [pid for pid in owners if pid and _alive(pid)]

    def totals(self) -> list[float]:
        """Return one slot's worth of values, summed over every slot (the pid excluded)."""
        size = self.layout.slot_size
        sums = [0.0] * size
        values = self._values
        for base in range(0, self.slots * size, size):
            if values[base]:
                for i in range(1, size):
                    sums[i] += values[base + i]
        return sums

    def close(self) -> None:
        """Unmap the store."""
        self._values.release()
        self._map.close()
        os.close(self._fd)


class Recorder:
    """One process's slot: counts each request into it."""

    __slots__ = ("_hist", "_method_index", "_path_index", "_status_index", "_sum", "_values")

    def __init__(self, values: memoryview[float], base: int, layout: Layout) -> None:
        """Count into ``values`` at the slot starting at ``base``."""
        self._values = values
        paths, methods = len(layout.paths), len(layout.methods)
        first = base + 1
        self._status_index = {s: first + i * methods * paths for i, s in enumerate(layout.statuses)}
        self._method_index = {m: i * paths for i, m in enumerate(layout.methods)}
        self._path_index = {p: i for i, p in enumerate(layout.paths)}
        self._hist = first + layout.series
        self._sum = self._hist + len(BUCKETS_MS) + 1

    def observe(self, status: int, method: str, path: str, duration_ms: float) -> None:
        """Count one request; ``path`` is a route or :data:`UNMATCHED_PATH`."""
        values = self._values
        method_index = self._method_index.get(method)
        if method_index is None:
            method_index = self._method_index[OTHER_METHOD]
        values[self._status_index[status] + method_index + self._path_index[path]] += 1.0
        values[self._hist + bisect_left(BUCKETS_MS, duration_ms)] += 1.0
        values[self._sum] += duration_ms


class _HttpCollector(Collector):
    def __init__(self, store: MetricsStore) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        layout = self._store.layout
        totals = self._store.totals()
        requests = CounterMetricFamily(
            REQUESTS_NAME,
            "HTTP requests answered, by status, method and route",
            labels=("status", "method", "path"),
        )
        index = 1
        for status in layout.statuses:
            for method in layout.methods:
                for path in layout.paths:
                    if totals[index]:
                        requests.add_metric((str(status), method, path), totals[index])
                    index += 1
        yield requests
        cumulative, buckets = 0.0, []
        for bound, count in zip((*BUCKETS_MS, float("inf")), totals[index:], strict=False):
            cumulative += count
            buckets.append((_bound(bound), cumulative))
        yield HistogramMetricFamily(
            DURATION_NAME,
            "Time from a request's arrival to its answer, in milliseconds",
            buckets=buckets,
            sum_value=totals[-1],
        )


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


class _ProcessTreeCollector(Collector):
    """The standard ``process_*`` metrics, summed over the instance's processes.

    The processes are the supervisor, the workers that own a slot of the store, and
    their parents (the listeners), found without scanning /proc. Resident memory is the
    sum of their proportional set sizes (PSS), so that pages they share since they
    forked count once. Reading PSS walks every memory mapping, so it is refreshed at most
    every :data:`PSS_REFRESH` seconds; everything else is read at each scrape.
    """

    _SUMMED = frozenset(
        {
            "process_cpu_seconds",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
        }
    )
    _RESIDENT = "process_resident_memory_bytes"

    def __init__(self, root: int, store: MetricsStore) -> None:
        self._root = root
        self._store = store
        self._pss: int | None = None
        self._pss_at = -PSS_REFRESH

    def collect(self) -> Iterator[Metric]:
        pids = self._pids()
        families: dict[str, Metric] = {}
        for pid in pids:
            for family in ProcessCollector(pid=_constant(pid), registry=None).collect():
                if family.name not in families:
                    families[family.name] = family
                elif family.name in self._SUMMED and family.samples:
                    kept = families[family.name]
                    if kept.samples:
                        first = kept.samples[0]
                        kept.samples[0] = first._replace(
                            value=first.value + family.samples[0].value
                        )
                    else:
                        kept.samples.extend(family.samples)
        now = time.monotonic()
        if now - self._pss_at >= PSS_REFRESH:
            sizes = [_pss_bytes(pid) for pid in pids]
            self._pss = None if None in sizes else sum(size or 0 for size in sizes)
            self._pss_at = now
        if self._RESIDENT in families and self._pss is not None:
            families[self._RESIDENT] = GaugeMetricFamily(
                self._RESIDENT,
                "Resident memory of echod's processes in bytes, shared pages counted once (PSS)",
                value=self._pss,
            )
        yield from families.values()
        yield GaugeMetricFamily(
            "echod_processes",
            "Processes of this echod instance (supervisor, listeners and workers)",
            value=len(pids),
        )

    def _pids(self) -> list[int]:
        pids = {self._root: None}
        for worker in self._store.owners():
            listener = _parent(worker)
            if listener is not None and listener != self._root and _parent(listener) == self._root:
                pids[listener] = None
            pids[worker] = None
        return list(pids)


def _pss_bytes(pid: int) -> int | None:
    try:
        with Path(f"/proc/{pid}/smaps_rollup").open() as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split(maxsplit=2)[1])


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] not in "ZX"  # a zombie has finished its work


def build_registry(store: MetricsStore, *, root_pid: int, version: str) -> CollectorRegistry:
    """Return a registry of the request metrics, the process metrics and the build info."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_HttpCollector(store))
    registry.register(_ProcessTreeCollector(root_pid, store))
    Info("echod_build", "The running echod's version", registry=registry).info({"version": version})
    return registry


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """Return the exposition of ``registry`` in the format ``accept`` asks for, and its type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def slots_for(listeners: int, workers: int) -> int:
    """Return how many slots an instance needs: one per worker, with room for respawns."""
    return 4 * listeners * workers + 8
