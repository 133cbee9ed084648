"""wstest's report of an Autobahn run, read and summarized: the pass rule and the Markdown.

wstest writes ``index.json``, the verdict of each case and of its close behaviour, and the
driver writes ``plan.json``, the cases the run selected. A case passes when both verdicts
are OK, NON-STRICT or INFORMATIONAL; in the compression groups (12 and 13,
permessage-deflate, which the servers do not offer) UNIMPLEMENTED passes too. A planned
case without a result fails.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

#: Autobahn's names of its groups (it has no group 8 or 11).
GROUPS = {
    "1": "Framing",
    "2": "Pings/Pongs",
    "3": "Reserved Bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 Handling",
    "7": "Close Handling",
    "9": "Limits/Performance",
    "10": "Misc",
    "12": "Compression (payloads)",
    "13": "Compression (parameters)",
}
PASSING = frozenset({"OK", "NON-STRICT", "INFORMATIONAL"})
#: The permessage-deflate groups: a server that offers no compression is UNIMPLEMENTED there.
COMPRESSION = frozenset({"12", "13"})
#: The columns of the summary; any other verdict (WRONG CODE, UNCLEAN) counts as FAILED.
VERDICTS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
#: The width of the summary's prose, as the project's Markdown has it.
WIDTH = 88


class AutobahnError(Exception):
    """A run could not be made or read; the message says why."""


@dataclass(frozen=True)
class CaseResult:
    """One case of wstest's report: its verdict and that of its close behaviour."""

    case: str
    behavior: str
    close: str

    @property
    def group(self) -> str:
        """The group, the first part of the id ("6" of "6.4.1")."""
        return self.case.split(".", 1)[0]

    @property
    def passed(self) -> bool:
        """Both verdicts pass (UNIMPLEMENTED too, in the compression groups)."""
        allowed = PASSING | {"UNIMPLEMENTED"} if self.group in COMPRESSION else PASSING
        return self.behavior in allowed and self.close in allowed


@dataclass(frozen=True)
class Report:
    """A run: what ran, against what, what it planned and what came of each case."""

    server: str
    command: str
    path: str
    selection: str
    version: str
    planned: list[str]
    results: dict[str, CaseResult]
    seconds: float
    date: str

    def problems(self) -> list[str]:
        """A line per case that failed or has no result, in the order of the plan."""
        lines = []
        for case in self.planned:
            result = self.results.get(case)
            if result is None:
                lines.append(f"{case}: no result (wstest did not finish it)")
            elif not result.passed:
                lines.append(f"{case}: {result.behavior}, close behaviour {result.close}")
        return lines


def case_key(case: str) -> tuple[int, ...]:
    """The order of case ids: 9.2.1 before 10.1.1."""
    return tuple(int(part) for part in case.split("."))


def read_report(
    folder: Path, *, server: str, command: str, path: str, selection: str, seconds: float
) -> Report:
    """The report in ``folder``: the driver's plan.json and wstest's index.json."""
    try:
        plan = json.loads((folder / "plan.json").read_text())
        index = json.loads((folder / "index.json").read_text()).get(server, {})
    except (OSError, ValueError) as error:
        raise AutobahnError(f"wstest wrote no report in {folder}: {error}") from error
    return Report(
        server=server,
        command=command,
        path=path,
        selection=selection,
        version=plan["autobahntestsuite"],
        planned=plan["cases"],
        results={
            case: CaseResult(case, entry["behavior"], entry["behaviorClose"])
            for case, entry in index.items()
        },
        seconds=seconds,
        date=f"{datetime.now(UTC):%Y-%m-%d}",
    )


def table(report: Report, verdict: str) -> list[str]:
    """A Markdown table of the counts of ``verdict`` ("behavior" or "close"), per group."""
    counts: dict[str, Counter[str]] = {}
    for result in report.results.values():
        value = getattr(result, verdict)
        counts.setdefault(result.group, Counter())[value if value in VERDICTS else "FAILED"] += 1
    lines = ["| group | cases | " + " | ".join(VERDICTS) + " |", "|---" * (len(VERDICTS) + 2) + "|"]
    for group in sorted(counts, key=int):
        cells = " | ".join(str(counts[group][name]) for name in VERDICTS)
        lines.append(f"| {group} {GROUPS.get(group, '')} | {counts[group].total()} | {cells} |")
    return lines


def _fill(text: str) -> str:
    return textwrap.fill(text, WIDTH, break_on_hyphens=False)


def markdown(report: Report) -> str:
    """The summary of a run, as docs/autobahn.md has it."""
    problems = report.problems()
    outcome = f"{len(problems)} cases did not pass:" if problems else "every case passed."
    ran_compression = any(r.group in COMPRESSION for r in report.results.values())
    notable = [
        f"{r.case} {r.behavior}" + ("" if r.close == "OK" else f" (close {r.close})")
        for r in sorted(report.results.values(), key=lambda r: case_key(r.case))
        if r.passed and (r.behavior, r.close) != ("OK", "OK") and r.group not in COMPRESSION
    ]
    lines = [
        "# Autobahn test suite",
        "",
        _fill(
            f"The fuzzing client of the Autobahn test suite (wstest, autobahntestsuite "
            f"{report.version}) against {report.server}'s `{report.path}`, with credentials on "
            f"every handshake: the {report.selection} run, {len(report.planned)} cases in "
            f"{report.seconds:.0f} s, on {report.date}. Result: {outcome}"
        ),
        "",
        *[f"- {line}" for line in problems],
        *([""] if problems else []),
        _fill(
            "A case passes when its verdict and that of its close behaviour are OK, NON-STRICT "
            "or INFORMATIONAL. Groups 12 and 13 test compression (permessage-deflate), which "
            "is not offered: UNIMPLEMENTED is their expected verdict"
            + ("." if ran_compression else ", and this run leaves them out.")
            + " `make autobahn` reruns this (`AUTOBAHN_SERVER=go` against the Go reference);"
            " the server ran as:"
        ),
        "",
        "```",
        report.command,
        "```",
        "",
        "## Verdicts",
        "",
        *table(report, "behavior"),
        "",
        "## Close behaviour",
        "",
        *table(report, "close"),
    ]
    if notable:
        lines += ["", _fill("Passed, but not OK: " + ", ".join(notable) + ".")]
    return "\n".join(lines) + "\n"
