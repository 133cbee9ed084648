"""Procfs: the one reader of /proc. A process's parent, liveness, times, memory and files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "ProcessStats",
    "alive",
    "boot_time",
    "max_fds",
    "open_fds",
    "parent",
    "process_stats",
    "pss_bytes",
    "start_time",
    "stat_fields",
    "tcp_migrate_req",
]

_PROC = Path("/proc")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


class ProcessStats(NamedTuple):
    """What /proc/<pid>/stat says of a process, in seconds and bytes."""

    #: User and system CPU time.
    cpu_seconds: float
    #: When it started, in seconds since boot.
    started: float
    virtual_bytes: int
    resident_bytes: int


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


def process_stats(pid: int) -> ProcessStats | None:
    """The CPU time, start, and memory of ``pid``, or None if it is gone."""
    fields = stat_fields(pid)
    if fields is None:
        return None
    return ProcessStats(
        cpu_seconds=(int(fields[11]) + int(fields[12])) / _TICKS,
        started=int(fields[19]) / _TICKS,
        virtual_bytes=int(fields[20]),
        resident_bytes=int(fields[21]) * _PAGE,
    )


def open_fds(pid: int) -> int | None:
    """How many file descriptors ``pid`` has open, or None if they cannot be listed."""
    try:
        return sum(1 for _ in (_PROC / str(pid) / "fd").iterdir())
    except OSError:
        return None


def max_fds(pid: int) -> int | None:
    """The soft limit of ``pid``'s open files, or None (unknown, or unlimited)."""
    try:
        limits = (_PROC / str(pid) / "limits").read_text()
    except OSError:
        return None
    for line in limits.splitlines():
        if line.startswith("Max open files"):
            soft = line.split()[3]
            return int(soft) if soft.isdigit() else None
    return None


def boot_time() -> float:
    """When the machine booted, in Unix time (``btime`` of /proc/stat)."""
    for line in (_PROC / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def tcp_migrate_req() -> int | None:
    """``net.ipv4.tcp_migrate_req`` of this network namespace, or None where there is none.

    At 1, the kernel moves the connections queued on a closing ``SO_REUSEPORT`` socket
    to another one on the port (Linux 5.14 and newer); at 0 they are reset.
    """
    try:
        return int((_PROC / "sys" / "net" / "ipv4" / "tcp_migrate_req").read_text())
    except (OSError, ValueError):
        return None
