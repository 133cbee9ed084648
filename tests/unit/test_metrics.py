"""Metrics: the shared store, the recorder and what /metrics renders from them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS

from echod.telemetry.collectors import build_registry
from echod.telemetry.exposition import render
from echod.telemetry.metric_layout import BUCKETS_MS, Layout
from echod.telemetry.metric_store import MetricsStore, ReloadRecord, slots_for
from echod.version import __version__

if TYPE_CHECKING:
    from collections.abc import Iterator

    from echod.telemetry.exposition import Registry

#: What Prometheus sends when it scrapes.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
LAYOUT = Layout(paths=("/api/echo", "/health", "unmatched"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetricsStore]:
    """A store with room for four processes."""
    made = MetricsStore.create(tmp_path / "metrics", LAYOUT, slots=4)
    yield made
    made.close()


def registry_of(store: MetricsStore) -> Registry:
    """The registry /metrics renders, rooted at this process."""
    return build_registry(store, root_pid=os.getpid(), version=__version__)


def requests(registry: Registry, status: str, method: str, path: str) -> float | None:
    """Read one http_requests_total sample back."""
    labels = {"status": status, "method": method, "path": path}
    return registry.get_sample_value("http_requests_total", labels)


class TestRecorder:
    def test_requests_are_counted_by_status_method_and_path(self, store: MetricsStore) -> None:
        """Each request adds one to its own series."""
        recorder = store.claim()
        recorder.observe(200, "POST", LAYOUT.tally("/api/echo"), 1.0)
        recorder.observe(200, "POST", LAYOUT.tally("/api/echo"), 1.0)
        recorder.observe(401, "PUT", LAYOUT.tally("/api/echo"), 1.0)
        registry = registry_of(store)
        assert requests(registry, "200", "POST", "/api/echo") == 2
        assert requests(registry, "401", "PUT", "/api/echo") == 1
        assert requests(registry, "200", "PUT", "/api/echo") is None

    def test_unknown_methods_count_as_other(self, store: MetricsStore) -> None:
        """A method outside the known set cannot add series."""
        recorder = store.claim()
        recorder.observe(404, "PROPFIND", LAYOUT.tally("unmatched"), 1.0)
        recorder.observe(404, "BREW", LAYOUT.tally("unmatched"), 1.0)
        assert requests(registry_of(store), "404", "other", "unmatched") == 2

    def test_durations_land_in_millisecond_buckets(self, store: MetricsStore) -> None:
        """Buckets run from 0.1 ms to 10 s; le is inclusive; the sum is in ms."""
        recorder = store.claim()
        for duration in (0.05, 0.1, 3.0, 10_000.0, 20_000.0):
            recorder.observe(200, "POST", LAYOUT.tally("/api/echo"), duration)
        registry = registry_of(store)

        def bucket(le: str) -> float | None:
            return registry.get_sample_value(
                "http_request_duration_milliseconds_bucket", {"le": le}
            )

        assert BUCKETS_MS[0] == 0.1
        assert BUCKETS_MS[-1] == 10_000
        assert bucket("0.1") == 2
        assert bucket("2.5") == 2
        assert bucket("5.0") == 3
        assert bucket("10000.0") == 4
        assert bucket("+Inf") == 5
        assert registry.get_sample_value("http_request_duration_milliseconds_count") == 5
        assert registry.get_sample_value("http_request_duration_milliseconds_sum") == pytest.approx(
            30_003.15
        )


class TestStore:
    def test_slots_of_several_processes_are_summed(self, store: MetricsStore) -> None:
        """Two processes counting into one store show as one instance."""
        first = store.claim(pid=os.getpid())
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            second = store.claim(pid=child.pid)
            first.observe(200, "POST", LAYOUT.tally("/api/echo"), 1.0)
            second.observe(200, "POST", LAYOUT.tally("/api/echo"), 1.0)
            assert requests(registry_of(store), "200", "POST", "/api/echo") == 2
        finally:
            child.kill()
            child.wait()

    def test_a_dead_process_slot_is_reused_and_its_counts_kept(self, store: MetricsStore) -> None:
        """A replacement worker adds to what the dead one counted: counters never go down."""
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        store.claim(pid=child.pid).observe(500, "POST", LAYOUT.tally("/api/echo"), 1.0)
        replacement = store.claim(pid=os.getpid())
        replacement.observe(500, "POST", LAYOUT.tally("/api/echo"), 1.0)
        assert requests(registry_of(store), "500", "POST", "/api/echo") == 2

    def test_claiming_when_every_slot_is_live_fails(self, tmp_path: Path) -> None:
        """A store never hands one slot to two live processes."""
        store = MetricsStore.create(tmp_path / "m", LAYOUT, slots=1)
        store.claim(pid=os.getpid())
        with pytest.raises(RuntimeError, match="all 1 metric slots"):
            store.claim(pid=os.getppid())
        store.close()

    def test_a_second_mapping_sees_the_same_counts(self, store: MetricsStore) -> None:
        """Workers map the file the supervisor made; all share one memory."""
        store.claim().observe(200, "POST", LAYOUT.tally("/api/echo"), 1.0)
        other = MetricsStore(store.path, LAYOUT)
        assert requests(registry_of(other), "200", "POST", "/api/echo") == 1
        other.close()

    def test_there_is_room_for_every_worker_and_their_replacements(self) -> None:
        """Slots cover each serving process several times over."""
        assert slots_for(4) >= 4 * 2


class TestRegistry:
    def test_no_requests_means_no_request_series(self, store: MetricsStore) -> None:
        """Series appear once counted, as in the seed, so a scan creates none."""
        store.claim()
        text, _ = render(registry_of(store), None)
        assert b"http_requests_total{" not in text
        assert b"# TYPE http_requests_total counter" in text

    def test_build_info_and_process_metrics_are_exported(self, store: MetricsStore) -> None:
        """echod_build_info{version} and the process_* metrics of the whole tree."""
        store.claim()
        registry = registry_of(store)
        assert registry.get_sample_value("echod_build_info", {"version": __version__}) == 1
        assert (registry.get_sample_value("process_resident_memory_bytes") or 0) > 0
        assert registry.get_sample_value("process_cpu_seconds_total") is not None
        assert (registry.get_sample_value("echod_processes") or 0) >= 1

    def test_reloads_are_exported_from_the_supervisor_s_record(
        self, store: MetricsStore, tmp_path: Path
    ) -> None:
        """Both results counted from zero, the last outcome and its time, the expiry."""
        record = ReloadRecord.create(tmp_path / "reloads")
        registry = build_registry(store, root_pid=os.getpid(), version=__version__, reloads=record)
        record.started(1000.0, None)
        for result in ("success", "failure"):
            assert registry.get_sample_value("echod_reloads_total", {"result": result}) == 0
        assert registry.get_sample_value("echod_last_reload_success") == 1
        assert registry.get_sample_value("echod_last_reload_timestamp_seconds") == 1000
        expiry = "echod_tls_certificate_expiration_timestamp_seconds"
        assert registry.get_sample_value(expiry) is None, "no HTTPS, no certificate"
        record.succeeded(2000.0, 1.8e9)
        record.failed(3000.0)
        assert registry.get_sample_value("echod_reloads_total", {"result": "success"}) == 1
        assert registry.get_sample_value("echod_reloads_total", {"result": "failure"}) == 1
        assert registry.get_sample_value("echod_last_reload_success") == 0
        assert registry.get_sample_value("echod_last_reload_timestamp_seconds") == 3000
        assert registry.get_sample_value(expiry) == 1.8e9
        record.close()

    def test_resident_memory_is_proportional(self, store: MetricsStore) -> None:
        """Memory is the PSS of the processes: shared pages are not counted twice."""
        store.claim()
        registry = registry_of(store)
        text, _ = render(registry, None)
        assert b"shared pages counted once (PSS)" in text
        rss_kib = next(
            int(line.split()[1])
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        resident = registry.get_sample_value("process_resident_memory_bytes") or 0
        assert 0 < resident <= rss_kib * 1024 * 1.1

    @pytest.mark.parametrize(
        ("accept", "content_type", "marker"),
        [
            (None, "text/plain; version=", b"# TYPE http_requests_total counter"),
            ("text/plain", "text/plain; version=", b"# HELP"),
            ("application/openmetrics-text", OPENMETRICS, b"# EOF"),
            (
                PROMETHEUS_ACCEPT,
                OPENMETRICS,
                b"# EOF",
            ),
            ("application/openmetrics-text;q=0, text/plain;q=1", "text/plain; version=", b"# HELP"),
            ("text/plain;q=0.4, application/openmetrics-text;q=0.5", OPENMETRICS, b"# EOF"),
            ("text/plain, application/openmetrics-text", "text/plain; version=", b"# HELP"),
            ("*/*", "text/plain; version=", b"# HELP"),
            ("application/*;q=0.2", OPENMETRICS, b"# EOF"),
            ("application/openmetrics-text;q=nan", "text/plain; version=", b"# HELP"),
            ("image/png", "text/plain; version=", b"# HELP"),
        ],
        ids=[
            "none",
            "text",
            "openmetrics",
            "prometheus",
            "openmetrics-refused",
            "openmetrics-preferred",
            "tie-is-text",
            "anything",
            "application-range",
            "bad-q",
            "neither",
        ],
    )
    def test_render_follows_the_accept_header(
        self, store: MetricsStore, accept: str | None, content_type: str, marker: bytes
    ) -> None:
        """Prometheus text by default; OpenMetrics when Accept prefers it, by its q-values."""
        store.claim()
        body, given = render(registry_of(store), accept)
        assert given.startswith(content_type)
        assert marker in body
