"""Exposition: metric families, and their text in the Prometheus and OpenMetrics formats.

echod writes its own exposition rather than load prometheus_client, which would add
about 14 MiB to every serving process for the little that ``/metrics`` needs: counters,
gauges, one histogram and one info metric, rendered in the Prometheus text format
(0.0.4) or, when ``Accept`` prefers it, in OpenMetrics 1.0. Both follow what
prometheus_client writes, sample for sample, and the tests parse them back with
prometheus_client's own parser and check them with promtool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = [
    "OPENMETRICS_CONTENT_TYPE",
    "TEXT_CONTENT_TYPE",
    "Family",
    "Registry",
    "Sample",
    "render",
]

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_OPENMETRICS = "application/openmetrics-text"
_TEXT = "text/plain"
# The suffix each kind's samples carry after the family's name, in the text formats.
_COUNTER_SUFFIX = "_total"
_INFO_SUFFIX = "_info"


class Sample(NamedTuple):
    """One sample: its full name (``http_requests_total``), labels and value."""

    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Family:
    """A metric family: its name (without ``_total`` or ``_info``), kind, help and samples."""

    name: str
    #: "counter", "gauge", "histogram" or "info".
    kind: str
    help: str
    samples: list[Sample] = field(default_factory=list)

    def add(self, labels: dict[str, str], value: float, suffix: str = "") -> None:
        """Add a sample; a counter's or an info's name suffix is added for it."""
        if not suffix:
            suffix = {"counter": _COUNTER_SUFFIX, "info": _INFO_SUFFIX}.get(self.kind, "")
        self.samples.append(Sample(self.name + suffix, labels, value))


class Registry:
    """What ``/metrics`` renders: the families its collectors give at each scrape."""

    def __init__(self, collectors: Iterable[Callable[[], Iterable[Family]]]) -> None:
        """Collect from each of ``collectors``, in order, at each scrape."""
        self._collectors = list(collectors)

    def collect(self) -> Iterator[Family]:
        """Every family, as it is now."""
        for collector in self._collectors:
            yield from collector()

    def get_sample_value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The value of the sample ``name`` with exactly ``labels``, or None."""
        wanted = labels or {}
        for family in self.collect():
            for sample in family.samples:
                if sample.name == name and sample.labels == wanted:
                    return sample.value
        return None


def render(registry: Registry, accept: str | None) -> tuple[bytes, str]:
    """The exposition of ``registry`` in the format ``accept`` asks for, and its type.

    OpenMetrics is chosen only when ``Accept`` gives it a higher quality than the
    Prometheus text format (RFC 9110 section 12.5.1): ``q=0`` refuses a format.
    """
    families = list(registry.collect())
    if _quality(accept, _OPENMETRICS) > _quality(accept, _TEXT):
        return _openmetrics(families), OPENMETRICS_CONTENT_TYPE
    return _text(families), TEXT_CONTENT_TYPE


def _text(families: list[Family]) -> bytes:
    """The Prometheus text format: counters and infos named as their samples are."""
    lines = []
    for family in families:
        kind = family.kind
        name = family.name
        if kind == "counter":
            name += _COUNTER_SUFFIX
        elif kind == "info":
            name, kind = name + _INFO_SUFFIX, "gauge"
        lines += [f"# HELP {name} {_escape_help(family.help)}", f"# TYPE {name} {kind}"]
        lines += [_sample(sample) for sample in family.samples]
    return ("\n".join(lines) + "\n").encode()


def _openmetrics(families: list[Family]) -> bytes:
    """OpenMetrics 1.0: families named without their samples' suffix, then ``# EOF``."""
    lines = []
    for family in families:
        lines += [
            f"# HELP {family.name} {_escape_help(family.help)}",
            f"# TYPE {family.name} {family.kind}",
        ]
        lines += [_sample(sample) for sample in family.samples]
    return ("\n".join([*lines, "# EOF"]) + "\n").encode()


def _sample(sample: Sample) -> str:
    labels = ""
    if sample.labels:
        pairs = ",".join(
            f'{key}="{_escape(value)}"' for key, value in sorted(sample.labels.items())
        )
        labels = f"{{{pairs}}}"
    return f"{sample.name}{labels} {go_float(sample.value)}"


def go_float(value: float) -> str:
    """``value`` as Prometheus writes a float: ``2.0``, ``+Inf``, ``NaN``, ``1.8e+09``."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(float(value))
    point = text.find(".")
    # Go writes an exponent sooner than Python does, for large positive numbers.
    if value > 0 and point > 6:  # noqa: PLR2004 - seven digits before the point
        mantissa = f"{text[0]}.{text[1:point]}{text[point + 1 :]}".rstrip("0.")
        return f"{mantissa}e+0{point - 1}"
    return text


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


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
