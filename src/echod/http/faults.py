"""Faults: a status picked by weight and a delay picked in a range, repeatable with a seed.

``status=200:8,503:2`` answers 200 four times in five and 503 otherwise; an entry
without a weight weighs 1, and a plain ``status=503`` is no choice at all.
``delay_ms=100-500`` waits a whole number of milliseconds from 100 to 500, each as
likely. ``seed`` makes the choices of a request the same every time it is sent: the
status is picked first, then the delay, each from one draw of :func:`random.random`
(whose sequence for a seed Python keeps from one version to the next). The answer says
what was picked: ``X-Echod-Chosen: status=503; delay_ms=231``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from echod.http.controls import Bounds, number
from echod.http.problems import BadRequest

if TYPE_CHECKING:
    from echod.http.controls import Controls

__all__ = ["MAX_ENTRIES", "SEED", "WEIGHT", "Faults", "faults"]

#: The most entries a weighted status may list.
MAX_ENTRIES = 10
#: What one entry may weigh.
WEIGHT = Bounds(0, 1_000_000)
#: What a seed may be.
SEED = Bounds(0, 999_999_999)
#: The header that names what was picked.
CHOSEN = "x-echod-chosen"


@dataclass(frozen=True, slots=True)
class Faults:
    """What a request asks to be picked: statuses by weight, a delay range, a seed."""

    #: Each status that may be picked with its weight; one entry of weight 1 when plain.
    statuses: tuple[tuple[int, int], ...]
    #: The shortest and the longest delay, in milliseconds.
    delay: tuple[int, int]
    #: Whether anything is picked at random (a weighted status or a delay range).
    picks: bool
    seed: int | None

    @property
    def possible(self) -> frozenset[int]:
        """The statuses that may be picked: those of a weight above 0."""
        return frozenset(status for status, weight in self.statuses if weight)

    def choose(self) -> tuple[int, int, tuple[str, str] | None]:
        """The status and the delay picked, and the ``X-Echod-Chosen`` header when picked."""
        draw = random.random if self.seed is None else random.Random(self.seed).random  # noqa: S311 - a test fixture's choice, not a secret
        weighed = [(status, weight) for status, weight in self.statuses if weight]
        point = draw() * sum(weight for _, weight in weighed)
        status = weighed[-1][0]
        for candidate, weight in weighed:
            if point < weight:
                status = candidate
                break
            point -= weight
        low, high = self.delay
        wait = min(high, low + int(draw() * (high - low + 1)))
        chosen = (CHOSEN, f"status={status}; delay_ms={wait}") if self.picks else None
        return status, wait, chosen


def faults(controls: Controls, statuses: Bounds, delays: Bounds, default: int = 200) -> Faults:
    """What ``controls`` ask of ``status``, ``delay_ms`` and ``seed``.

    A status is one of ``statuses``, and a delay within ``delays``.

    Raises:
        BadRequest: a value is malformed or out of bounds; the detail names the control.
    """
    picks = False
    entries: tuple[tuple[int, int], ...] = ((default, 1),)
    if (given := controls.text("status")) is not None:
        raw, source = given
        entries = _weighted(raw, source, statuses)
        picks = "," in raw or ":" in raw
    delay = (0, 0)
    if (given := controls.text("delay_ms")) is not None:
        raw, source = given
        low, dash, high = raw.partition("-")
        if dash:
            delay = (number(low, source, delays), number(high, source, delays))
            if delay[0] > delay[1]:
                raise BadRequest(f"{source}={raw!r} is a range whose start is after its end")
            picks = True
        else:
            delay = (number(raw, source, delays),) * 2
    return Faults(entries, delay, picks, controls.integer("seed", SEED))


def _weighted(raw: str, source: str, bounds: Bounds) -> tuple[tuple[int, int], ...]:
    """``200:8,503:2`` as its statuses and their weights."""
    items = raw.split(",")
    if len(items) > MAX_ENTRIES:
        raise BadRequest(f"{source} lists {len(items)} statuses; at most {MAX_ENTRIES} may be")
    entries = []
    for item in items:
        status, colon, weight = item.partition(":")
        try:
            entries.append(
                (number(status, "status", bounds), number(weight, "weight", WEIGHT) if colon else 1)
            )
        except BadRequest as error:
            raise BadRequest(
                f"{source}={raw[:40]!r} is not a list of status[:weight], such as 200:8,503:2: "
                f"{error.detail}"
            ) from None
    if not any(weight for _, weight in entries):
        raise BadRequest(f"{source}={raw[:40]!r} weighs nothing: give one status a weight")
    return tuple(entries)
