"""The mutation score of a mutmut run, for each pattern it ran; make mutation prints it.

``mutmut results --all true`` lists every mutant as ``name: status``, one a line; this
reads that list on standard input. A mutant belongs to the first pattern its name matches
(fnmatch, as mutmut matches the names it is told to run), and mutants no pattern matches
are left out: mutmut also lists those of a module's other functions, which it did not run.
A mutant counts as killed when the tests failed (``killed``) or hung (``timeout``); any
other status, ``survived``, ``no tests`` and ``not checked`` included, counts against the
score. The exit status is 1 when the score of all the patterns together is under the bar.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

#: The statuses that mean the tests caught the mutant.
KILLED = frozenset({"killed", "timeout"})


@dataclass
class Tally:
    """The outcomes of the mutants of one pattern."""

    pattern: str
    statuses: Counter[str] = field(default_factory=Counter)
    survivors: list[str] = field(default_factory=list)

    @property
    def mutants(self) -> int:
        """How many mutants the pattern matched."""
        return sum(self.statuses.values())

    @property
    def killed(self) -> int:
        """How many of them the tests caught."""
        return sum(count for status, count in self.statuses.items() if status in KILLED)

    @property
    def score(self) -> float:
        """The percentage killed; 0 when the pattern matched no mutant."""
        return 100 * self.killed / self.mutants if self.mutants else 0.0


def tally(lines: Iterable[str], patterns: list[str]) -> list[Tally]:
    """One tally per pattern, in order, from the lines of ``mutmut results --all true``."""
    tallies = [Tally(pattern) for pattern in patterns]
    for line in lines:
        name, colon, status = line.strip().partition(": ")
        if not colon:
            continue
        found = next((t for t in tallies if fnmatchcase(name, t.pattern)), None)
        if found is None:
            continue
        found.statuses[status] += 1
        if status not in KILLED:
            found.survivors.append(f"{name}: {status}")
    return tallies


def report(tallies: list[Tally]) -> str:
    """The table of the tallies and their total, then every mutant that was not killed."""
    total = Tally("all", sum((t.statuses for t in tallies), Counter()))
    width = max(len(t.pattern) for t in [*tallies, total])
    rows = [f"{'pattern':<{width}}  mutants  killed  not killed   score"]
    rows += [
        f"{row.pattern:<{width}}  {row.mutants:>7}  {row.killed:>6}"
        f"  {row.mutants - row.killed:>10}  {row.score:5.1f} %"
        for row in [*tallies, total]
    ]
    survivors = [name for t in tallies for name in t.survivors]
    if survivors:
        rows += ["", "not killed:", *(f"  {name}" for name in sorted(survivors, key=_in_order))]
    return "\n".join(rows) + "\n"


def _in_order(line: str) -> tuple[str, int]:
    """Sort by function, then by mutmut's number: _2 comes before _10."""
    function, _, number = line.partition(":")[0].rpartition("__mutmut_")
    return function, int(number) if number.isdigit() else 0


def main(argv: list[str] | None = None, lines: Iterable[str] | None = None) -> int:
    """Print the report of the results on standard input; 1 if the score is under the bar."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bar", type=float, required=True, help="the lowest passing score, in %")
    parser.add_argument("patterns", nargs="+", help="the mutant names make mutation ran")
    args = parser.parse_args(argv)
    tallies = tally(sys.stdin if lines is None else lines, args.patterns)
    sys.stdout.write(report(tallies))
    empty = [t.pattern for t in tallies if not t.mutants]
    if empty:
        sys.stderr.write(f"no mutant matches {', '.join(empty)}: was mutmut run on it?\n")
        return 1
    killed = sum(t.killed for t in tallies)
    score = 100 * killed / sum(t.mutants for t in tallies)
    if score < args.bar:
        sys.stderr.write(f"mutation score {score:.1f} % is under the bar of {args.bar:g} %\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
