"""Report: each check's result and evidence, and the three ways of printing them.

A check has a name, a result (:data:`PASS`, :data:`WARN`, :data:`FAIL` or :data:`SKIP`), a
detail that says why in one sentence, and its evidence: what was sent, and what arrived
(at echod, through ``/api/inspect``, or back at the client). :func:`render` prints a
report as a plain table, as JSON, or as Markdown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FAIL",
    "FORMATS",
    "PASS",
    "RESULTS",
    "SKIP",
    "WARN",
    "Check",
    "Report",
    "render",
]

PASS = "pass"  # noqa: S105 - a result, not a password
WARN = "warn"
FAIL = "fail"
SKIP = "skip"
#: The results, from best to worst; a skipped check says nothing either way.
RESULTS = (PASS, WARN, FAIL, SKIP)
#: The formats :func:`render` prints.
FORMATS = ("table", "json", "markdown")


@dataclass
class Check:
    """One check: its number and name, its result, why, and its evidence."""

    number: int
    name: str
    title: str
    result: str = SKIP
    detail: str = ""
    #: What the audit sent, one line each.
    sent: list[str] = field(default_factory=list)
    #: What arrived: at echod (its report), or back at the client.
    arrived: list[str] = field(default_factory=list)

    def judge(self, result: str, detail: str) -> Check:
        """Set the result and why; return the check."""
        self.result, self.detail = result, detail
        return self

    def as_dict(self) -> dict[str, Any]:
        """The check as JSON data."""
        return {
            "number": self.number,
            "name": self.name,
            "title": self.title,
            "result": self.result,
            "detail": self.detail,
            "sent": self.sent,
            "arrived": self.arrived,
        }


@dataclass
class Report:
    """A run of the audit through one proxy."""

    through: str
    checks: list[Check] = field(default_factory=list)
    #: The echod instances that answered, by id.
    instances: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many checks had each result."""
        return {result: sum(1 for check in self.checks if check.result == result)
                for result in RESULTS}  # fmt: skip

    @property
    def failed(self) -> bool:
        """Whether any check failed."""
        return any(check.result == FAIL for check in self.checks)

    def summary(self) -> str:
        """``15 checks: 13 pass, 1 warn, 1 fail, 0 skip``."""
        counts = self.counts()
        said = ", ".join(f"{counts[result]} {result}" for result in RESULTS)
        count = len(self.checks)
        return f"{count} check{'' if count == 1 else 's'}: {said}"

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON data."""
        return {
            "through": self.through,
            "instances": self.instances,
            "checks": [check.as_dict() for check in self.checks],
            "counts": self.counts(),
            "failed": self.failed,
        }


def render(report: Report, form: str) -> str:
    """``report`` as ``table``, ``json`` or ``markdown``, ending with a newline."""
    if form == "json":
        return json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"
    if form == "markdown":
        return _markdown(report)
    return _table(report)


def _table(report: Report) -> str:
    width = max((len(check.name) for check in report.checks), default=4)
    indent = " " * (width + 12)  # under the detail
    lines = [f"echod audit through {report.through}", ""]
    for check in report.checks:
        lines.append(
            f"{check.number:>2}  {check.name:<{width}}  {check.result.upper():<4}  {check.detail}"
        )
        lines.extend(f"{indent}sent     {line}" for line in check.sent)
        lines.extend(f"{indent}arrived  {line}" for line in check.arrived)
    lines += ["", report.summary()]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text that stays in its Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(report: Report) -> str:
    lines = [
        f"# echod audit through {report.through}",
        "",
        "| # | check | result | detail | sent | arrived |",
        "|---|---|---|---|---|---|",
    ]
    for check in report.checks:
        sent = "<br>".join(_cell(line) for line in check.sent)
        arrived = "<br>".join(_cell(line) for line in check.arrived)
        lines.append(
            f"| {check.number} | `{check.name}` | **{check.result}** | {_cell(check.detail)} "
            f"| {sent} | {arrived} |"
        )
    lines += ["", report.summary()]
    return "\n".join(lines) + "\n"
