"""Layout: where each metric value sits in a worker's slot, in both directions.

A slot is a row of floats: the owner's pid, one counter per combination of the labels
of ``http_requests_total``, the histogram's buckets (and +Inf), the sum of the
durations, one counter of WebSocket messages per path and direction, and the gauge of
the worker's open WebSocket connections. :class:`Layout` owns the arithmetic both ways:
the offset of a (status, method, path) when a request is counted, and the labels of
each offset when ``/metrics`` reads them back. Both derive from one list of dimensions,
in one order, so reordering them or adding a value cannot put a count under the wrong
labels.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from echod.routes import KNOWN_METHODS, UNMATCHED, metric_paths, websocket_paths

if TYPE_CHECKING:
    from collections.abc import Iterator


class Floats(Protocol):
    """Floats by index, as the memory map of a slot file is cast (``memoryview.cast("d")``)."""

    def __getitem__(self, index: int, /) -> float:
        """The float at ``index``."""
        ...

    def __setitem__(self, index: int, value: float, /) -> None:
        """Set the float at ``index``."""
        ...


__all__ = [
    "BUCKETS_MS",
    "DIRECTIONS",
    "OTHER",
    "OWN_STATUSES",
    "REGISTERED_STATUSES",
    "STATUSES",
    "Floats",
    "Layout",
    "Recorder",
]

#: Histogram buckets, in milliseconds (the metric's unit), from 0.1 ms to 10 s.
BUCKETS_MS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
#: The statuses echod answers with of itself (101: a WebSocket; 204: a CORS preflight;
#: 499: the client went away first; 503: draining, or too many delayed requests).
OWN_STATUSES = (101, 200, 204, 400, 401, 403, 404, 405, 413, 415, 499, 500, 503)
#: The registered statuses from 200 to 599 (IANA's HTTP Status Code Registry, and 418),
#: any of which a client may ask ``/api/inspect`` for and see counted under its own code.
REGISTERED_STATUSES = (
    *range(200, 209), 226,
    *range(300, 306), 307, 308,
    *range(400, 419), *range(421, 427), 428, 429, 431, 451,
    *range(500, 509), 510, 511,
)  # fmt: skip
#: Every status with its own label; any other (an unregistered one asked for) is ``other``.
STATUSES = tuple(sorted({*OWN_STATUSES, *REGISTERED_STATUSES}))
#: The directions of a WebSocket message: from the client, to the client.
DIRECTIONS = ("in", "out")
#: The label of a status or method the layout does not list: labels stay bounded.
OTHER = "other"
#: The dimensions of ``http_requests_total``, outermost first.
DIMENSIONS = ("status", "method", "path")


@dataclass(frozen=True, slots=True)
class Layout:
    """The label values of ``http_requests_total`` and the place of each combination."""

    paths: tuple[str, ...] = field(default_factory=metric_paths)
    statuses: tuple[str, ...] = (*(str(status) for status in STATUSES), OTHER)
    methods: tuple[str, ...] = (*KNOWN_METHODS, OTHER)
    #: The order of the dimensions in a slot, outermost first.
    order: tuple[str, ...] = DIMENSIONS
    #: The ``path`` labels of WebSocket messages: the routes that take WebSockets.
    websocket_paths: tuple[str, ...] = field(default_factory=websocket_paths)

    def __post_init__(self) -> None:
        """Check that every dimension has its catch-all value, and the order names each once.

        Raises:
            ValueError: a catch-all is missing, or the order is not the three dimensions.
        """
        if sorted(self.order) != sorted(DIMENSIONS):
            raise ValueError(f"the order {self.order} must name each of {DIMENSIONS} once")
        for dimension, catch_all in (("status", OTHER), ("method", OTHER), ("path", UNMATCHED)):
            values = self.values(dimension)
            if catch_all not in values or len(set(values)) != len(values):
                raise ValueError(f"the {dimension} labels {values} need {catch_all!r}, once")

    def values(self, dimension: str) -> tuple[str, ...]:
        """The label values of one dimension, in their order."""
        return {"status": self.statuses, "method": self.methods, "path": self.paths}[dimension]

    def strides(self) -> dict[str, int]:
        """How far apart two neighbouring values of each dimension are."""
        strides, step = {}, 1
        for dimension in reversed(self.order):
            strides[dimension] = step
            step *= len(self.values(dimension))
        return strides

    def offsets(self, dimension: str) -> dict[str, int]:
        """Each label value of ``dimension`` and what it adds to a counter's offset."""
        stride = self.strides()[dimension]
        return {value: i * stride for i, value in enumerate(self.values(dimension))}

    def offset(self, status: str, method: str, path: str) -> int:
        """The offset of one counter among the counters."""
        given = {"status": status, "method": method, "path": path}
        return sum(self.offsets(dimension)[given[dimension]] for dimension in self.order)

    def labels(self) -> Iterator[tuple[int, dict[str, str]]]:
        """Every counter's offset and labels, in the order of the offsets."""
        offsets = {dimension: self.offsets(dimension) for dimension in self.order}
        for combination in itertools.product(*(self.values(d) for d in self.order)):
            labels = dict(zip(self.order, combination, strict=True))
            yield sum(offsets[d][labels[d]] for d in self.order), labels

    @property
    def series(self) -> int:
        """The number of counter series one slot holds."""
        return len(self.statuses) * len(self.methods) * len(self.paths)

    @property
    def counters(self) -> int:
        """Where the counters start in a slot (after the owner's pid)."""
        return 1

    @property
    def buckets(self) -> int:
        """Where the histogram's buckets start in a slot; +Inf is the last of them."""
        return self.counters + self.series

    @property
    def sum(self) -> int:
        """Where the sum of the durations is in a slot."""
        return self.buckets + len(BUCKETS_MS) + 1

    @property
    def messages(self) -> int:
        """Where the WebSocket message counters start in a slot."""
        return self.sum + 1

    def message_labels(self) -> Iterator[tuple[int, dict[str, str]]]:
        """Each WebSocket message counter's offset from :attr:`messages`, and its labels."""
        for i, (path, direction) in enumerate(itertools.product(self.websocket_paths, DIRECTIONS)):
            yield i, {"path": path, "direction": direction}

    @property
    def connections(self) -> int:
        """Where the gauge of open WebSocket connections is in a slot."""
        return self.messages + len(self.websocket_paths) * len(DIRECTIONS)

    @property
    def slot_size(self) -> int:
        """Floats per slot: the pid, the counters, the buckets, the sum, the WebSocket part."""
        return self.connections + 1


class Recorder:
    """One process's slot: counts each request into it.

    The label offsets are looked up in three small tables, so counting a request costs
    three dictionary lookups and three float additions.
    """

    __slots__ = (
        "_connections",
        "_hist",
        "_messages",
        "_method",
        "_other_method",
        "_other_status",
        "_path",
        "_status",
        "_sum",
        "_unmatched",
        "_values",
    )

    def __init__(self, values: Floats, base: int, layout: Layout) -> None:
        """Count into ``values`` (floats) at the slot starting at ``base``."""
        self._values = values
        counters = base + layout.counters
        status = layout.offsets("status")
        self._other_status = counters + status[OTHER]
        self._status = {int(s): counters + o for s, o in status.items() if s != OTHER}
        self._method = layout.offsets("method")
        self._other_method = self._method[OTHER]
        self._path = layout.offsets("path")
        self._unmatched = self._path[UNMATCHED]
        self._hist = base + layout.buckets
        self._sum = base + layout.sum
        self._messages = {
            (labels["path"], labels["direction"]): base + layout.messages + offset
            for offset, labels in layout.message_labels()
        }
        self._connections = base + layout.connections

    def observe(self, status: int, method: str, path: str, duration_ms: float) -> None:
        """Count one request: a status or method the layout lacks counts as :data:`OTHER`."""
        values = self._values
        try:
            index = self._status[status] + self._method[method] + self._path[path]
        except KeyError:  # rare: an unlisted status or method, counted as other
            index = self._index(status, method, path)
        values[index] += 1.0
        values[self._hist + bisect_left(BUCKETS_MS, duration_ms)] += 1.0
        values[self._sum] += duration_ms

    def count(self, status: int, method: str, path: str) -> None:
        """Count one request in ``http_requests_total`` only, not in the durations.

        A WebSocket connection is counted so: it lasts as long as its client wants.
        """
        self._values[self._index(status, method, path)] += 1.0

    def message(self, path: str, direction: str) -> None:
        """Count one WebSocket message on ``path``, "in" from the client or "out" to it."""
        self._values[self._messages[path, direction]] += 1.0

    def connections(self, change: int) -> None:
        """Add ``change`` (1 or -1) to this worker's open WebSocket connections."""
        self._values[self._connections] += change

    def _index(self, status: int, method: str, path: str) -> int:
        return (
            self._status.get(status, self._other_status)
            + self._method.get(method, self._other_method)
            + self._path.get(path, self._unmatched)
        )
