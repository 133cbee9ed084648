"""Layout: where each metric value sits in a worker's slot, in both directions.

A slot is a row of floats: the owner's pid, one counter per combination of the labels
of ``http_requests_total``, the histogram's buckets (and +Inf), the sum of the
durations, one counter of WebSocket messages per path and direction, the gauge of
the worker's open WebSocket connections, the counter of log lines dropped, the
generation of the material in service, one counter per content coding and direction
(request bodies decoded, answers encoded), and the scenarios' counters: requests by
what the state made of them, the state's failures by operation, and keys evicted by
reason. :class:`Layout` owns the arithmetic both ways:
the offset of a (status, method, path) when a request is counted, and the labels of
each offset when ``/metrics`` reads them back. Both derive from one list of dimensions,
in one order, so reordering them or adding a value cannot put a count under the wrong
labels.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from echod.routes import KNOWN_METHODS, ROUTES, UNMATCHED

if TYPE_CHECKING:
    from collections.abc import Iterator


class Floats(Protocol):
    """Floats by index, as the memory map of a slot file is cast (``memoryview.cast("d")``).

    The type of a slot's values: ``memoryview[float]`` says the same to mypy, but is not
    a type the interpreter (3.11) or the API documentation can evaluate.
    """

    def __getitem__(self, index: int, /) -> float:
        """The float at ``index``."""
        ...

    def __setitem__(self, index: int, value: float, /) -> None:
        """Set the float at ``index``."""
        ...


__all__ = [
    "BUCKETS_MS",
    "CODINGS",
    "CODING_DIRECTIONS",
    "DECODED",
    "DIRECTIONS",
    "ENCODED",
    "EVICTION_REASONS",
    "FOR_KEYS",
    "FOR_SPACE",
    "MESSAGE_IN",
    "MESSAGE_OUT",
    "OTHER",
    "OWN_STATUSES",
    "REGISTERED_STATUSES",
    "SCENARIO_FAILED",
    "SCENARIO_LIMITED",
    "SCENARIO_PASSED",
    "SCENARIO_RESULTS",
    "STATE_ATTEMPT",
    "STATE_OPERATIONS",
    "STATE_READ",
    "STATE_RESET",
    "STATUSES",
    "Floats",
    "Layout",
    "Recorder",
    "Tally",
]

#: Histogram buckets, in milliseconds (the metric's unit), from 0.1 ms to 10 s.
BUCKETS_MS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
#: The statuses echod answers with of itself (101: a WebSocket; 204: a CORS preflight;
#: 499: the client went away first; 503: draining, or too many delayed requests).
#: 206 and 304: a range of /api/bytes, and a conditional request whose tag matches; 406:
#: no coding acceptable; 416: a range outside the bytes; 426: a WebSocket handshake that lost
#: its Upgrade on the way; 429: a rate's bucket is empty.
OWN_STATUSES = (
    101, 200, 204, 206, 304, 400, 401, 403, 404, 405, 406, 408, 413, 415, 416, 426, 429, 499,
    500, 503,
)  # fmt: skip
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
#: The directions of a WebSocket message, from the client and to it, in the order of
#: their counters: :meth:`Recorder.message` takes :data:`MESSAGE_IN` or :data:`MESSAGE_OUT`.
DIRECTIONS = ("in", "out")
MESSAGE_IN, MESSAGE_OUT = range(len(DIRECTIONS))
#: The content codings echod decodes and encodes (RFC 9110 section 8.4.1), by the names
#: HTTP gives them: the ``coding`` label of ``echod_content_codings_total``.
CODINGS = ("gzip", "deflate", "br", "zstd")
#: What a coding was used for, in the order of its counters: :meth:`Recorder.coding`
#: takes :data:`DECODED` (a request body) or :data:`ENCODED` (an answer).
CODING_DIRECTIONS = ("decoded", "encoded")
DECODED, ENCODED = range(len(CODING_DIRECTIONS))
#: What the state made of a request with ``key=`` or ``rate=``, in the order of their
#: counters: the answer it would have had, a failure its key's rule asked for, or a 429.
SCENARIO_RESULTS = ("passed", "failed", "limited")
SCENARIO_PASSED, SCENARIO_FAILED, SCENARIO_LIMITED = range(len(SCENARIO_RESULTS))
#: The operations of the state's store, in the order of their error counters.
STATE_OPERATIONS = ("attempt", "read", "reset")
STATE_ATTEMPT, STATE_READ, STATE_RESET = range(len(STATE_OPERATIONS))
#: Why a key was evicted before its ttl: to stay within the live keys, or to fit in the
#: runtime directory's reserved file.
EVICTION_REASONS = ("keys", "space")
FOR_KEYS, FOR_SPACE = range(len(EVICTION_REASONS))
#: The label of a status or method the layout does not list: labels stay bounded.
OTHER = "other"
#: The dimensions of ``http_requests_total``, outermost first: the order of a slot.
DIMENSIONS = ("status", "method", "path")


@dataclass(frozen=True, slots=True)
class Tally:
    """What one route's requests are counted under, found once when a worker starts.

    The request path carries it from the route's lookup to the metric slot, so that no
    consumer looks the route up again by its label.
    """

    #: The metrics' ``path`` label: the route's path, or ``unmatched``.
    label: str
    #: Whether the durations go into the histogram (a delay or a stream is not timed).
    timed: bool
    #: What the path adds to a counter's offset in a slot.
    offset: int
    #: Where its WebSocket message counters start among them ("in", then "out"), or None.
    messages: int | None


@dataclass(frozen=True, slots=True)
class Layout:
    """The label values of ``http_requests_total`` and the place of each combination."""

    paths: tuple[str, ...] = (*(route.path for route in ROUTES), UNMATCHED)
    statuses: tuple[str, ...] = (*(str(status) for status in STATUSES), OTHER)
    methods: tuple[str, ...] = (*KNOWN_METHODS, OTHER)
    #: The ``path`` labels of WebSocket messages: the routes that take WebSockets.
    websocket_paths: tuple[str, ...] = tuple(route.path for route in ROUTES if route.websocket)

    def __post_init__(self) -> None:
        """Check that every dimension has its catch-all value, once.

        Raises:
            ValueError: a catch-all is missing or repeated.
        """
        for dimension, catch_all in (("status", OTHER), ("method", OTHER), ("path", UNMATCHED)):
            values = self.values(dimension)
            if catch_all not in values or len(set(values)) != len(values):
                raise ValueError(f"the {dimension} labels {values} need {catch_all!r}, once")

    def tally(self, path: str, *, timed: bool = True) -> Tally:
        """What requests to ``path`` are counted under; a path the layout lacks is unmatched.

        ``timed`` says whether their durations go into the histogram.
        """
        label = path if path in self.paths else UNMATCHED
        messages = None
        if label in self.websocket_paths:
            messages = self.websocket_paths.index(label) * len(DIRECTIONS)
        return Tally(label, timed, self.offsets("path")[label], messages)

    def values(self, dimension: str) -> tuple[str, ...]:
        """The label values of one dimension, in their order."""
        return {"status": self.statuses, "method": self.methods, "path": self.paths}[dimension]

    def strides(self) -> dict[str, int]:
        """How far apart two neighbouring values of each dimension are."""
        strides, step = {}, 1
        for dimension in reversed(DIMENSIONS):
            strides[dimension] = step
            step *= len(self.values(dimension))
        return strides

    def offsets(self, dimension: str) -> dict[str, int]:
        """Each label value of ``dimension`` and what it adds to a counter's offset."""
        stride = self.strides()[dimension]
        return {value: i * stride for i, value in enumerate(self.values(dimension))}

    def labels(self) -> Iterator[tuple[int, dict[str, str]]]:
        """Every counter's offset and labels, in the order of the offsets."""
        offsets = {dimension: self.offsets(dimension) for dimension in DIMENSIONS}
        for combination in itertools.product(*(self.values(d) for d in DIMENSIONS)):
            labels = dict(zip(DIMENSIONS, combination, strict=True))
            yield sum(offsets[d][labels[d]] for d in DIMENSIONS), labels

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
    def log_dropped(self) -> int:
        """Where the counter of log lines dropped (stdout too slow) is in a slot."""
        return self.connections + 1

    @property
    def generation(self) -> int:
        """Where the generation of the material that the process serves is in a slot.

        -1 until the process serves; then the generation of the record of reloads
        (:class:`echod.telemetry.metric_store.ReloadRecord`) it last put in service.
        """
        return self.log_dropped + 1

    @property
    def codings(self) -> int:
        """Where the counters of content codings start in a slot (decoded, then encoded)."""
        return self.generation + 1

    def coding_labels(self) -> Iterator[tuple[int, dict[str, str]]]:
        """Each coding counter's offset from :attr:`codings`, and its labels."""
        for i, (direction, coding) in enumerate(itertools.product(CODING_DIRECTIONS, CODINGS)):
            yield i, {"direction": direction, "coding": coding}

    @property
    def scenarios(self) -> int:
        """Where the counters of scenario requests start, by :data:`SCENARIO_RESULTS`."""
        return self.codings + len(CODING_DIRECTIONS) * len(CODINGS)

    @property
    def state_errors(self) -> int:
        """Where the counters of the state's failures start, by :data:`STATE_OPERATIONS`."""
        return self.scenarios + len(SCENARIO_RESULTS)

    @property
    def evictions(self) -> int:
        """Where the counters of evicted keys start, by :data:`EVICTION_REASONS`."""
        return self.state_errors + len(STATE_OPERATIONS)

    @property
    def slot_size(self) -> int:
        """Floats per slot: the pid, the counters, the buckets, the sum, and the rest."""
        return self.evictions + len(EVICTION_REASONS)


class Recorder:
    """One process's slot: counts each request into it.

    A request's place is its status's and method's offsets, looked up in two small
    tables, plus its route's, which its :class:`Tally` carries: counting one costs two
    dictionary lookups and three float additions.
    """

    __slots__ = (
        "_codings",
        "_connections",
        "_evictions",
        "_generation",
        "_hist",
        "_log_dropped",
        "_messages",
        "_method",
        "_other_method",
        "_other_status",
        "_scenarios",
        "_state_errors",
        "_status",
        "_sum",
        "_values",
        "layout",
    )

    def __init__(self, values: Floats, base: int, layout: Layout) -> None:
        """Count into ``values`` (floats) at the slot starting at ``base``."""
        #: Where each value sits in the slot.
        self.layout = layout
        self._values = values
        counters = base + layout.counters
        status = layout.offsets("status")
        self._other_status = counters + status[OTHER]
        self._status = {int(s): counters + o for s, o in status.items() if s != OTHER}
        self._method = layout.offsets("method")
        self._other_method = self._method[OTHER]
        self._hist = base + layout.buckets
        self._sum = base + layout.sum
        self._messages = base + layout.messages
        self._connections = base + layout.connections
        self._log_dropped = base + layout.log_dropped
        self._generation = base + layout.generation
        self._scenarios = base + layout.scenarios
        self._state_errors = base + layout.state_errors
        self._evictions = base + layout.evictions
        self._codings = {
            (CODING_DIRECTIONS.index(labels["direction"]), labels["coding"]): base
            + layout.codings
            + offset
            for offset, labels in layout.coding_labels()
        }

    def observe(self, status: int, method: str, tally: Tally, duration_ms: float) -> None:
        """Count one request: a status or method the layout lacks counts as :data:`OTHER`."""
        values = self._values
        try:
            index = self._status[status] + self._method[method] + tally.offset
        except KeyError:  # rare: an unlisted status or method, counted as other
            index = self._index(status, method, tally)
        values[index] += 1.0
        values[self._hist + bisect_left(BUCKETS_MS, duration_ms)] += 1.0
        values[self._sum] += duration_ms

    def count(self, status: int, method: str, tally: Tally) -> None:
        """Count one request in ``http_requests_total`` only, not in the durations.

        A WebSocket connection is counted so: it lasts as long as its client wants.
        """
        self._values[self._index(status, method, tally)] += 1.0

    def message(self, tally: Tally, direction: int) -> None:
        """Count one WebSocket message on ``tally``'s route, :data:`MESSAGE_IN` or ``_OUT``.

        Raises:
            ValueError: the route takes no WebSockets.
        """
        if tally.messages is None:
            raise ValueError(f"{tally.label} takes no WebSockets")
        self._values[self._messages + tally.messages + direction] += 1.0

    def connections(self, change: int) -> None:
        """Add ``change`` (1 or -1) to this worker's open WebSocket connections."""
        self._values[self._connections] += change

    def lines_dropped(self, count: int) -> None:
        """Count ``count`` log lines that stdout could not take in time."""
        self._values[self._log_dropped] += count

    def serving(self, generation: int) -> None:
        """Say that this process serves, with the material of ``generation``."""
        self._values[self._generation] = float(generation)

    def coding(self, direction: int, coding: str) -> None:
        """Count one body in ``coding``: :data:`DECODED` from a client, :data:`ENCODED` to one.

        Raises:
            KeyError: ``coding`` is not one of :data:`CODINGS`.
        """
        self._values[self._codings[direction, coding]] += 1.0

    def scenario(self, result: int) -> None:
        """Count one request the state decided, by :data:`SCENARIO_RESULTS` (an index)."""
        self._values[self._scenarios + result] += 1.0

    def state_error(self, operation: int) -> None:
        """Count one failed operation of the state, by :data:`STATE_OPERATIONS` (an index)."""
        self._values[self._state_errors + operation] += 1.0

    def evicted(self, reason: int, count: int) -> None:
        """Count ``count`` keys evicted before their ttl, by :data:`EVICTION_REASONS`."""
        self._values[self._evictions + reason] += count

    def _index(self, status: int, method: str, tally: Tally) -> int:
        return (
            self._status.get(status, self._other_status)
            + self._method.get(method, self._other_method)
            + tally.offset
        )
