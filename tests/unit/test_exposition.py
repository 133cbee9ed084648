"""Exposition: echod's own text formats, held to what prometheus_client writes and parses."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from echod.telemetry.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    Family,
    Registry,
    go_float,
    render,
)

OPENMETRICS_ACCEPT = "application/openmetrics-text"


def ours() -> Registry:
    """A counter with labels, a gauge, a histogram and an info: all that echod exports."""
    requests = Family("http_requests", "counter", "Requests\nanswered")
    requests.add({"status": "200", "method": "POST", "path": '/a"\\b'}, 3)
    requests.add({"status": "404", "method": "GET", "path": "unmatched"}, 1)
    gauge = Family("echod_websocket_connections", "gauge", "Open connections")
    gauge.add({}, 0)
    histogram = Family("http_request_duration_milliseconds", "histogram", "Durations")
    for bound, count in (("0.5", 1.0), ("1.0", 3.0), ("+Inf", 4.0)):
        histogram.add({"le": bound}, count, "_bucket")
    histogram.add({}, 4.0, "_count")
    histogram.add({}, 3.25, "_sum")
    info = Family("echod_build", "info", "The version")
    info.add({"version": "0.1.0"}, 1)
    return Registry([lambda: [requests, gauge, histogram, info]])


def theirs() -> CollectorRegistry:
    """The same metrics, made with prometheus_client."""
    requests = CounterMetricFamily(
        "http_requests", "Requests\nanswered", labels=("status", "method", "path")
    )
    requests.add_metric(["200", "POST", '/a"\\b'], 3)
    requests.add_metric(["404", "GET", "unmatched"], 1)
    gauge = GaugeMetricFamily("echod_websocket_connections", "Open connections", value=0)
    histogram = HistogramMetricFamily(
        "http_request_duration_milliseconds",
        "Durations",
        buckets=[("0.5", 1.0), ("1.0", 3.0), ("+Inf", 4.0)],
        sum_value=3.25,
    )
    info = InfoMetricFamily("echod_build", "The version", value={"version": "0.1.0"})

    class Fixed:
        def collect(self) -> list[object]:
            return [requests, gauge, histogram, info]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())  # type: ignore[arg-type]
    return registry


class TestFormats:
    def test_the_text_format_is_prometheus_clients(self) -> None:
        """Byte for byte what prometheus_client's generate_latest writes."""
        body, content_type = render(ours(), None)
        assert content_type == TEXT_CONTENT_TYPE
        assert body == generate_latest(theirs())

    def test_openmetrics_is_prometheus_clients(self) -> None:
        """Byte for byte what prometheus_client's OpenMetrics exposition writes."""
        body, content_type = render(ours(), OPENMETRICS_ACCEPT)
        assert content_type == OPENMETRICS_CONTENT_TYPE
        assert body == generate_openmetrics(theirs())  # type: ignore[no-untyped-call]

    def test_both_parse_back_to_the_same_samples(self) -> None:
        """prometheus_client's parsers (OpenMetrics' is strict) read the samples back."""
        text, _ = render(ours(), None)
        openmetrics, _ = render(ours(), OPENMETRICS_ACCEPT)
        from_text = {
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for family in parse_text(text.decode())
            for s in family.samples
        }
        from_openmetrics = {
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for family in parse_openmetrics(openmetrics.decode())  # type: ignore[no-untyped-call]
            for s in family.samples
        }
        assert from_text == from_openmetrics
        assert (
            "http_requests_total",
            (("method", "POST"), ("path", '/a"\\b'), ("status", "200")),
            3.0,
        ) in from_text


class TestRegistry:
    def test_samples_are_found_by_name_and_exact_labels(self) -> None:
        """What the tests read back; a missing sample is None."""
        registry = ours()
        labels = {"status": "404", "method": "GET", "path": "unmatched"}
        assert registry.get_sample_value("http_requests_total", labels) == 1
        assert registry.get_sample_value("http_requests_total", {"status": "404"}) is None
        assert registry.get_sample_value("echod_build_info", {"version": "0.1.0"}) == 1


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (2, "2.0"),
        (0.25, "0.25"),
        (1.8e9, "1.8e+09"),
        (1234567.0, "1.234567e+06"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
    ids=["whole", "fraction", "large", "seven-digits", "inf", "minus-inf", "nan"],
)
def test_floats_are_written_as_prometheus_writes_them(value: float, written: str) -> None:
    """As Go formats them, which is how Prometheus and its client libraries write them."""
    assert go_float(value) == written
