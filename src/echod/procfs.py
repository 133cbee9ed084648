"""Procfs: the one reader of /proc. A process's parent, liveness, start time and memory."""

from __future__ import annotations

from pathlib import Path

__all__ = ["alive", "parent", "pss_bytes", "start_time", "stat_fields"]

_PROC = Path("/proc")


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, or None if it is gone.

    The first is the state (field 3 of proc(5)), so field N of proc(5) is at N - 3.
    """
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def parent(pid: int) -> int | None:
    """The parent of ``pid``, or None if it is gone."""
    fields = stat_fields(pid)
    return None if fields is None else int(fields[1])


def alive(pid: int) -> bool:
    """Whether ``pid`` is running: it exists and is not a zombie."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in "ZX"


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot: with the pid, it names a process."""
    fields = stat_fields(pid)
    return None if fields is None else int(fields[19])


def pss_bytes(pid: int) -> int | None:
    """The proportional set size of ``pid``: its memory, shared pages divided among sharers."""
    try:
        with (_PROC / str(pid) / "smaps_rollup").open() as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None
