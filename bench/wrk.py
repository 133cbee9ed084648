"""wrk, run and read: requests/s, latency percentiles, errors."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def to_ms(value: str) -> float:
    """Convert a latency as wrk prints it (us, ms or s) to milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if match is None:
        raise ValueError(f"not a wrk latency: {value!r}")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def wrk(
    url: str, script: Path, seconds: int, connections: int, threads: int = 2
) -> dict[str, float]:
    """Run wrk and return its figures."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
               "--timeout", "5s", "-s", str(script), url]  # fmt: skip
    # wrk stops itself after ``seconds``; the timeout is for a wrk that does not.
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    figures: dict[str, float] = {}
    for key, pattern in {
        "rps": r"Requests/sec:\s+([\d.]+)",
        "requests": r"(\d+) requests in",
        "non_2xx": r"Non-2xx or 3xx responses: (\d+)",
    }.items():
        match = re.search(pattern, out)
        figures[key] = float(match.group(1)) if match else 0.0
    for key, pattern in {"p50_ms": r"^\s+50%\s+(\S+)$", "p99_ms": r"^\s+99%\s+(\S+)$"}.items():
        match = re.search(pattern, out, re.MULTILINE)
        if match is None:
            raise SystemExit(f"wrk printed no {key}:\n{out}")
        figures[key] = to_ms(match.group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    figures["socket_errors"] = sum(int(n) for n in errors.groups()) if errors else 0
    return figures
