"""Collectors: the metrics' names and help, the collectors that read the slots, the registry.

Each worker process counts its requests into its own slot of the instance's shared
metrics file (:mod:`echod.telemetry.metric_store`, laid out by
:mod:`echod.telemetry.metric_layout`): a few float additions per request, where
prometheus_client's multiprocess mode would write three files. ``/metrics`` in any
process sums every slot, so it reports the whole instance, all workers of both
listeners. prometheus_client does the rest: the registry, the exposition formats, and
the process metrics, which are summed over echod's processes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from echod.procfs import parent, pss_bytes
from echod.routes import AUTH_VERIFY
from echod.telemetry.metric_layout import BUCKETS_MS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prometheus_client.metrics_core import Metric

    from echod.telemetry.metric_store import MetricsStore, ReloadRecord

__all__ = ["build_registry", "render"]

REQUESTS_NAME = "http_requests_total"
DURATION_NAME = "http_request_duration_milliseconds"
MESSAGES_NAME = "echod_websocket_messages_total"
CONNECTIONS_NAME = "echod_websocket_connections"
AUTH_VERIFY_NAME = "echod_auth_verify_total"
#: The ``result`` of each status of ``/auth/verify``; any other status is ``error``.
AUTH_VERIFY_RESULTS = {"200": "allowed", "401": "denied"}
RELOADS_NAME = "echod_reloads_total"
LAST_RELOAD_SUCCESS_NAME = "echod_last_reload_success"
LAST_RELOAD_TIME_NAME = "echod_last_reload_timestamp_seconds"
CERT_EXPIRY_NAME = "echod_tls_certificate_expiration_timestamp_seconds"
#: Seconds between two readings of the processes' PSS, which walks every memory mapping.
PSS_REFRESH = 5.0


_LABELS = ("status", "method", "path")


class _HttpCollector(Collector):
    def __init__(self, store: MetricsStore) -> None:
        self._store = store
        layout = store.layout
        # Each counter's place in a slot and its label values, in the metric's label order.
        self._series = [
            (layout.counters + offset, [labels[name] for name in _LABELS])
            for offset, labels in layout.labels()
        ]
        # The counters of /auth/verify, by the result each status stands for: the route's
        # own metric is read from them, so that nothing more is counted per request.
        self._verify_results: dict[str, list[int]] = {"allowed": [], "denied": [], "error": []}
        for offset, labels in layout.labels():
            if labels["path"] == AUTH_VERIFY.path:
                result = AUTH_VERIFY_RESULTS.get(labels["status"], "error")
                self._verify_results[result].append(layout.counters + offset)

    def collect(self) -> Iterator[Metric]:
        layout = self._store.layout
        totals = self._store.totals()
        requests = CounterMetricFamily(
            REQUESTS_NAME,
            "HTTP requests answered, by status, method and route",
            labels=_LABELS,
        )
        for index, labels in self._series:
            if count := totals[index]:
                requests.add_metric(labels, count)
        yield requests
        cumulative, buckets = 0.0, []
        counts = totals[layout.buckets : layout.sum]
        for bound, count in zip((*BUCKETS_MS, float("inf")), counts, strict=True):
            cumulative += count
            buckets.append((_bound(bound), cumulative))
        yield HistogramMetricFamily(
            DURATION_NAME,
            "Time from a request's arrival to its answer, in milliseconds "
            "(WebSocket connections left out)",
            buckets=buckets,
            sum_value=totals[layout.sum],
        )
        messages = CounterMetricFamily(
            MESSAGES_NAME,
            "WebSocket messages, by route and direction (in: from the client)",
            labels=("path", "direction"),
        )
        for offset, message in layout.message_labels():
            messages.add_metric(
                [message["path"], message["direction"]], totals[layout.messages + offset]
            )
        yield messages
        verify = CounterMetricFamily(
            AUTH_VERIFY_NAME,
            "Forward-auth checks (/auth/verify), by result: allowed (200), denied (401), "
            "or error (any other status)",
            labels=("result",),
        )
        for result, indexes in self._verify_results.items():
            verify.add_metric([result], sum(totals[index] for index in indexes))
        yield verify
        yield GaugeMetricFamily(
            CONNECTIONS_NAME,
            "Open WebSocket connections, over every live worker",
            value=self._store.live_sum(layout.connections),
        )


class _ReloadCollector(Collector):
    """The supervisor's record of reloads, as Prometheus keeps the state of its own config."""

    def __init__(self, record: ReloadRecord) -> None:
        self._record = record

    def collect(self) -> Iterator[Metric]:
        record = self._record
        reloads = CounterMetricFamily(
            RELOADS_NAME,
            "Reloads of the users and certificate files (SIGHUP or a changed file), by result",
            labels=("result",),
        )
        reloads.add_metric(["success"], record.successes)
        reloads.add_metric(["failure"], record.failures)
        yield reloads
        yield GaugeMetricFamily(
            LAST_RELOAD_SUCCESS_NAME,
            "1 if the last reload (or the start) put its files in service, 0 if it failed",
            value=record.last_success,
        )
        yield GaugeMetricFamily(
            LAST_RELOAD_TIME_NAME,
            "When the last reload ended, or echod started, in Unix time",
            value=record.last_time,
        )
        if (not_after := record.cert_not_after) is not None:
            yield GaugeMetricFamily(
                CERT_EXPIRY_NAME,
                "When the certificate served on HTTPS expires (its not-after), in Unix time",
                value=not_after,
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
            sizes = [pss_bytes(pid) for pid in pids]
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
            listener = parent(worker)
            if listener is not None and listener != self._root and parent(listener) == self._root:
                pids[listener] = None
            pids[worker] = None
        return list(pids)


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


def build_registry(
    store: MetricsStore, *, root_pid: int, version: str, reloads: ReloadRecord | None = None
) -> CollectorRegistry:
    """Return a registry of the request metrics, the process metrics and the build info.

    With ``reloads``, the supervisor's record of reloads too.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_HttpCollector(store))
    registry.register(_ProcessTreeCollector(root_pid, store))
    if reloads is not None:
        registry.register(_ReloadCollector(reloads))
    Info("echod_build", "The running echod's version", registry=registry).info({"version": version})
    return registry


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """Return the exposition of ``registry`` in the format ``accept`` asks for, and its type.

    OpenMetrics is chosen only when ``Accept`` gives it a higher quality than the
    Prometheus text format (RFC 9110 section 12.5.1): ``q=0`` refuses a format.
    """
    chosen = _OPENMETRICS if _quality(accept, _OPENMETRICS) > _quality(accept, _TEXT) else _TEXT
    encoder, content_type = choose_encoder(chosen)
    return encoder(registry), content_type


_OPENMETRICS = "application/openmetrics-text"
_TEXT = "text/plain"


def _quality(accept: str | None, media_type: str) -> float:
    """The quality ``accept`` gives ``media_type``, from its most specific matching range."""
    if not accept:
        return 1.0 if media_type == _TEXT else 0.0
    kind = media_type.split("/", 1)[0]
    best, quality = -1, 0.0
    for media_range in accept.split(","):
        name, *parameters = (part.strip() for part in media_range.split(";"))
        name = name.lower()
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(name, -1)
        if specificity <= best:
            continue
        best, quality = specificity, 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
                if not 0.0 <= quality <= 1.0:  # also nan
                    quality = 0.0
    return quality
