"""Processes: a process tree and its CPU time, read from /proc, for the benchmarks and tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from echod.procfs import parent, stat_fields

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["cpu_seconds", "process_tree"]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it, ``root`` first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (up := parent(int(entry.name))) is not None:
            children.setdefault(up, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, ()))
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User and system CPU seconds of the live processes among ``pids``."""
    ticks = 0
    for pid in pids:
        if (fields := stat_fields(pid)) is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _CLOCK_TICKS
