"""Layout: every label combination has one place, found the same way in both directions."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from echod.http import problems
from echod.routes import KNOWN_METHODS, ROUTES, UNMATCHED
from echod.telemetry.collectors import build_registry
from echod.telemetry.metric_layout import (
    MESSAGE_IN,
    MESSAGE_OUT,
    OTHER,
    OWN_STATUSES,
    STATUSES,
    Layout,
)
from echod.telemetry.metric_store import MetricsStore
from echod.version import __version__

if TYPE_CHECKING:
    from pathlib import Path

SMALL = {"statuses": ("200", "404", OTHER), "methods": ("GET", "POST", OTHER)}
PATHS = ("/a", "/b", UNMATCHED)


def counted(store: MetricsStore) -> dict[tuple[str, str, str], float]:
    """Every http_requests_total sample, by (status, method, path), as /metrics reads it."""
    registry = build_registry(store, root_pid=os.getpid(), version=__version__)
    return {
        (sample.labels["status"], sample.labels["method"], sample.labels["path"]): sample.value
        for family in registry.collect()
        if family.name == "http_requests"
        for sample in family.samples
        if sample.name == "http_requests_total"
    }


class TestLayout:
    def test_counts_come_back_under_their_own_labels(self, tmp_path: Path) -> None:
        """Each combination counted a different number of times reads back exactly so."""
        layout = Layout(paths=PATHS, **SMALL)
        store = MetricsStore.create(tmp_path / "metrics", layout, slots=1)
        recorder = store.claim()
        expected = {}
        combinations = itertools.product(("200", "404"), ("GET", "POST"), PATHS)
        for times, (status, method, path) in enumerate(combinations, start=1):
            for _ in range(times):
                recorder.observe(int(status), method, layout.tally(path), 1.0)
            expected[(status, method, path)] = times
        assert counted(store) == expected
        store.close()

    def test_offsets_are_distinct_and_fill_the_counters(self) -> None:
        """No two combinations share a place, and none falls outside the counters."""
        layout = Layout(paths=PATHS, **SMALL)
        offsets = [offset for offset, _ in layout.labels()]
        assert sorted(offsets) == list(range(layout.series))
        status, method = layout.offsets("status"), layout.offsets("method")
        for offset, labels in layout.labels():
            tally = layout.tally(labels["path"])
            assert status[labels["status"]] + method[labels["method"]] + tally.offset == offset

    def test_an_unknown_status_is_counted_as_other(self, tmp_path: Path) -> None:
        """A status the layout does not list never raises: it is counted under other."""
        store = MetricsStore.create(tmp_path / "metrics", Layout(), slots=1)
        store.claim().observe(469, "GET", Layout().tally("/api/echo"), 1.0)  # registered by no RFC
        assert counted(store) == {(OTHER, "GET", "/api/echo"): 1}
        store.close()

    def test_an_unknown_method_or_path_is_counted_as_other_or_unmatched(
        self, tmp_path: Path
    ) -> None:
        """Labels stay bounded whatever the request says."""
        store = MetricsStore.create(tmp_path / "metrics", Layout(), slots=1)
        recorder = store.claim()
        recorder.observe(404, "BREW", store.layout.tally("/pot"), 1.0)
        recorder.observe(404, "PROPFIND", store.layout.tally(UNMATCHED), 1.0)
        assert counted(store) == {("404", OTHER, UNMATCHED): 2}
        store.close()

    def test_a_catch_all_label_is_required(self) -> None:
        """A layout without other or unmatched could not count everything: it is refused."""
        with pytest.raises(ValueError, match="unmatched"):
            Layout(paths=("/a",))
        with pytest.raises(ValueError, match="other"):
            Layout(statuses=("200",))

    def test_the_default_labels_come_from_the_route_table(self) -> None:
        """Paths are the routes' labels and unmatched; methods the known ones and other."""
        layout = Layout()
        assert layout.paths == (*(route.path for route in ROUTES), UNMATCHED)
        assert layout.methods == (*KNOWN_METHODS, OTHER)

    def test_every_status_echod_answers_has_a_place(self) -> None:
        """The statuses the app can produce are counted under their own code."""
        problem_statuses = {
            cls.status for cls in vars(problems).values()
            if isinstance(cls, type) and issubclass(cls, problems.Problem)
        }  # fmt: skip
        assert problem_statuses | {200, 204, 499} <= set(OWN_STATUSES) <= set(STATUSES)


class TestWebSocketPart:
    def test_messages_are_counted_by_route_and_direction(self, tmp_path: Path) -> None:
        """Each WebSocket route has an in and an out counter; the gauge sums live workers."""
        store = MetricsStore.create(tmp_path / "metrics", Layout(), slots=2)
        recorder = store.claim()
        echo, raw = store.layout.tally("/api/echo"), store.layout.tally("/api/raw")
        recorder.message(echo, MESSAGE_IN)
        recorder.message(echo, MESSAGE_IN)
        recorder.message(raw, MESSAGE_OUT)
        recorder.connections(1)
        recorder.connections(1)
        recorder.connections(-1)
        registry = build_registry(store, root_pid=os.getpid(), version=__version__)

        def messages(path: str, direction: str) -> float | None:
            labels = {"path": path, "direction": direction}
            return registry.get_sample_value("echod_websocket_messages_total", labels)

        assert messages("/api/echo", "in") == 2
        assert messages("/api/echo", "out") == 0
        assert messages("/api/raw", "out") == 1
        assert registry.get_sample_value("echod_websocket_connections") == 1
        store.close()

    def test_a_dead_worker_s_connections_leave_the_gauge(self, tmp_path: Path) -> None:
        """Its counts stay; its open connections do not, and its replacement starts at 0."""
        store = MetricsStore.create(tmp_path / "metrics", Layout(), slots=1)
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        dead = store.claim(pid=child.pid)
        dead.connections(1)
        dead.message(store.layout.tally("/api/raw"), MESSAGE_IN)
        assert store.live_sum(store.layout.connections) == 0
        store.claim()  # the replacement takes the dead worker's slot
        totals = store.totals()
        assert totals[store.layout.connections] == 0
        assert sum(totals[store.layout.messages : store.layout.connections]) == 1
        store.close()
