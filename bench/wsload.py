"""wsload, run and read: WebSocket messages/s, round-trip percentiles, errors.

wsload is the Go load generator in bench/reference/wsload, which ``make bench-compare-ws``
builds into build/reference/. It prints one JSON object, read here as it is.
"""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

#: The figures wsload prints, all of which a caller may read.
FIGURES = frozenset({
    "connections", "connected", "seconds", "messages", "messages_per_second",
    "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors", "mismatches",
})  # fmt: skip


class WsloadError(Exception):
    """wsload did not run, or printed no figures."""


def wsload(
    binary: Path, url: str, seconds: int, connections: int, user: str = "remarkablebob:2rFtex"
) -> dict[str, float]:
    """Run wsload against ``url`` and return its figures.

    Raises:
        WsloadError: wsload printed no figures (a run with no echo at all still has them).
    """
    command = [str(binary), "-url", url, "-c", str(connections), "-d", f"{seconds}s",
               "-user", user]  # fmt: skip
    # wsload stops itself after ``seconds`` and its 5 s deadline; this is for one that does not.
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=seconds + 30
    )
    try:
        figures = json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise WsloadError(
            f"wsload exited with {done.returncode} and printed no figures: {done.stderr[-500:]}"
        ) from error
    if not isinstance(figures, dict) or not figures.keys() >= FIGURES:
        raise WsloadError(f"wsload printed {done.stdout[:500]!r}")
    return {key: float(figures[key]) for key in FIGURES}
