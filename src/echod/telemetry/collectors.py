"""Collectors: the metrics' names and help, read from the shared slots at each scrape.

Each serving process counts its requests into its own slot of the instance's shared
metrics file (:mod:`echod.telemetry.metric_store`, laid out by
:mod:`echod.telemetry.metric_layout`): a few float additions per request. ``/metrics``
in any process sums every slot, so it reports the whole instance, every worker. The
process metrics (``process_*``) are those of prometheus_client's process collector,
summed over the instance's processes and read from /proc (:mod:`echod.procfs`);
:mod:`echod.telemetry.exposition` renders them all.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from echod.procfs import boot_time, max_fds, open_fds, process_stats, pss_bytes
from echod.routes import AUTH_VERIFY
from echod.telemetry.exposition import Family, Registry
from echod.telemetry.metric_layout import (
    BUCKETS_MS,
    EVICTION_REASONS,
    SCENARIO_RESULTS,
    STATE_OPERATIONS,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from echod.telemetry.metric_store import MetricsStore, ReloadRecord

__all__ = ["build_registry"]

REQUESTS_NAME = "http_requests"
DURATION_NAME = "http_request_duration_milliseconds"
MESSAGES_NAME = "echod_websocket_messages"
CONNECTIONS_NAME = "echod_websocket_connections"
AUTH_VERIFY_NAME = "echod_auth_verify"
#: The ``result`` of each status of ``/auth/verify``; any other status is ``error``.
AUTH_VERIFY_RESULTS = {"200": "allowed", "401": "denied"}
LOG_DROPPED_NAME = "echod_log_lines_dropped"
CODINGS_NAME = "echod_content_codings"
SCENARIOS_NAME = "echod_scenario_requests"
STATE_ERRORS_NAME = "echod_state_errors"
EVICTIONS_NAME = "echod_state_evictions"
RELOADS_NAME = "echod_reloads"
LAST_RELOAD_SUCCESS_NAME = "echod_last_reload_success"
LAST_RELOAD_TIME_NAME = "echod_last_reload_timestamp_seconds"
CERT_EXPIRY_NAME = "echod_tls_certificate_expiration_timestamp_seconds"
#: Seconds between two readings of the processes' PSS, which walks every memory mapping.
PSS_REFRESH = 5.0

_LABELS = ("status", "method", "path")


class _HttpCollector:
    def __init__(self, store: MetricsStore) -> None:
        self._store = store
        layout = store.layout
        # Each counter's place in a slot and its labels, in the metric's label order.
        self._series = [
            (layout.counters + offset, {name: labels[name] for name in _LABELS})
            for offset, labels in layout.labels()
        ]
        # The counters of /auth/verify, by the result each status stands for: the route's
        # own metric is read from them, so that nothing more is counted per request.
        self._verify_results: dict[str, list[int]] = {"allowed": [], "denied": [], "error": []}
        for offset, labels in layout.labels():
            if labels["path"] == AUTH_VERIFY.path:
                result = AUTH_VERIFY_RESULTS.get(labels["status"], "error")
                self._verify_results[result].append(layout.counters + offset)

    def __call__(self) -> Iterator[Family]:
        layout = self._store.layout
        totals = self._store.totals()
        requests = Family(
            REQUESTS_NAME, "counter", "HTTP requests answered, by status, method and route"
        )
        for index, labels in self._series:
            if count := totals[index]:
                requests.add(labels, count)
        yield requests
        durations = Family(
            DURATION_NAME,
            "histogram",
            "Time from a request's arrival to its answer, in milliseconds "
            "(WebSocket connections left out)",
        )
        cumulative = 0.0
        counts = totals[layout.buckets : layout.sum]
        for bound, count in zip((*BUCKETS_MS, float("inf")), counts, strict=True):
            cumulative += count
            durations.add({"le": _bound(bound)}, cumulative, "_bucket")
        durations.add({}, cumulative, "_count")
        durations.add({}, totals[layout.sum], "_sum")
        yield durations
        messages = Family(
            MESSAGES_NAME,
            "counter",
            "WebSocket messages, by route and direction (in: from the client)",
        )
        for offset, message in layout.message_labels():
            messages.add(dict(message), totals[layout.messages + offset])
        yield messages
        verify = Family(
            AUTH_VERIFY_NAME,
            "counter",
            "Forward-auth checks (/auth/verify), by result: allowed (200), denied (401), "
            "or error (any other status)",
        )
        for result, indexes in self._verify_results.items():
            verify.add({"result": result}, sum(totals[index] for index in indexes))
        yield verify
        connections = Family(
            CONNECTIONS_NAME, "gauge", "Open WebSocket connections, over every live worker"
        )
        connections.add({}, self._store.live_sum(layout.connections))
        yield connections
        dropped = Family(
            LOG_DROPPED_NAME,
            "counter",
            "Log lines dropped because stdout did not take them in time (--log-buffer-bytes)",
        )
        dropped.add({}, totals[layout.log_dropped])
        yield dropped
        codings = Family(
            CODINGS_NAME,
            "counter",
            "Bodies in a content coding: request bodies decoded, answers encoded",
        )
        for offset, coding in layout.coding_labels():
            codings.add(dict(coding), totals[layout.codings + offset])
        yield codings
        yield _counters(
            SCENARIOS_NAME,
            "Requests to /api/inspect with key= or rate=, by what the state made of them "
            "(passed, failed by the key's rule, limited: 429)",
            "result",
            SCENARIO_RESULTS,
            totals[layout.scenarios :],
        )
        yield _counters(
            STATE_ERRORS_NAME,
            "Operations of the state store that failed (unreachable, too slow or full), "
            "each answered 503",
            "operation",
            STATE_OPERATIONS,
            totals[layout.state_errors :],
        )
        yield _counters(
            EVICTIONS_NAME,
            "Keys evicted before their ttl, least recently used first: past 10,000 live "
            "keys, or to fit in the runtime directory's reserved file",
            "reason",
            EVICTION_REASONS,
            totals[layout.evictions :],
        )


class _ReloadCollector:
    """The record of reloads, as Prometheus keeps the state of its own config."""

    def __init__(self, record: ReloadRecord) -> None:
        self._record = record

    def __call__(self) -> Iterator[Family]:
        record = self._record
        reloads = Family(
            RELOADS_NAME,
            "counter",
            "Reloads of the users and certificate files (SIGHUP or a changed file), by result",
        )
        reloads.add({"result": "success"}, record.successes)
        reloads.add({"result": "failure"}, record.failures)
        yield reloads
        yield _gauge(
            LAST_RELOAD_SUCCESS_NAME,
            "1 if the last reload (or the start) put its files in service, 0 if it failed",
            record.last_success,
        )
        yield _gauge(
            LAST_RELOAD_TIME_NAME,
            "When the last reload ended, or echod started, in Unix time",
            record.last_time,
        )
        if (not_after := record.cert_not_after) is not None:
            yield _gauge(
                CERT_EXPIRY_NAME,
                "When the certificate served on HTTPS expires (its not-after), in Unix time",
                not_after,
            )


class _ProcessCollector:
    """The standard ``process_*`` metrics, summed over the instance's processes.

    The processes are the root (the one process, or the supervisor) and the workers that
    own a slot of the store. Resident memory is the sum of their proportional set sizes
    (PSS), so that pages they share count once. Reading PSS walks every memory mapping,
    so it is refreshed at most every :data:`PSS_REFRESH` seconds; everything else is read
    at each scrape.
    """

    def __init__(self, root: int, store: MetricsStore) -> None:
        self._root = root
        self._store = store
        self._pss: int | None = None
        self._pss_at = -PSS_REFRESH

    def __call__(self) -> Iterator[Family]:
        pids = list(dict.fromkeys([self._root, *self._store.owners()]))
        stats = [found for pid in pids if (found := process_stats(pid)) is not None]
        now = time.monotonic()
        if now - self._pss_at >= PSS_REFRESH:
            sizes = [pss_bytes(pid) for pid in pids]
            self._pss = None if None in sizes else sum(size or 0 for size in sizes)
            self._pss_at = now
        if stats:
            root = stats[0]
            yield _gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                sum(each.virtual_bytes for each in stats),
            )
            yield _gauge(
                "process_resident_memory_bytes",
                "Resident memory of echod's processes in bytes, shared pages counted once (PSS)",
                self._pss if self._pss is not None else sum(each.resident_bytes for each in stats),
            )
            yield _gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                boot_time() + root.started,
            )
            cpu = Family(
                "process_cpu_seconds", "counter", "Total user and system CPU time spent in seconds."
            )
            cpu.add({}, sum(each.cpu_seconds for each in stats))
            yield cpu
        if (fds := [open_fds(pid) for pid in pids]) and None not in fds:
            yield _gauge("process_open_fds", "Number of open file descriptors.", sum(fds))  # type: ignore[arg-type]
        if (limit := max_fds(self._root)) is not None:
            yield _gauge("process_max_fds", "Maximum number of open file descriptors.", limit)
        yield _gauge(
            "echod_processes",
            "Processes of this echod instance (the process, or the supervisor and its workers)",
            len(stats),
        )


def _counters(
    name: str, help_text: str, label: str, values: tuple[str, ...], totals: list[float]
) -> Family:
    family = Family(name, "counter", help_text)
    for value, total in zip(values, totals, strict=False):
        family.add({label: value}, total)
    return family


def _gauge(name: str, help_text: str, value: float) -> Family:
    family = Family(name, "gauge", help_text)
    family.add({}, value)
    return family


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _build_info(version: str) -> Callable[[], Iterator[Family]]:
    def collect() -> Iterator[Family]:
        info = Family("echod_build", "info", "The running echod's version")
        info.add({"version": version}, 1.0)
        yield info

    return collect


def build_registry(
    store: MetricsStore,
    *,
    root_pid: int | None = None,
    version: str,
    reloads: ReloadRecord | None = None,
) -> Registry:
    """Return a registry of the request metrics, the process metrics and the build info.

    ``root_pid`` is the instance's first process (this one by default). With
    ``reloads``, the record of reloads too.
    """
    collectors: list[Callable[[], Iterator[Family]]] = [
        _HttpCollector(store),
        _ProcessCollector(os.getpid() if root_pid is None else root_pid, store),
    ]
    if reloads is not None:
        collectors.append(_ReloadCollector(reloads))
    collectors.append(_build_info(version))
    return Registry(collectors)
