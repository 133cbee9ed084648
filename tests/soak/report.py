"""Print the figures of the last soak run (build/reliability/*.json) as a Markdown table.

python -m tests.soak.report
"""

from __future__ import annotations

import json
import sys

from tests.soak.conftest import FIGURES


def main() -> int:
    """Print one row per test: what it does, how long it ran and what it measured."""
    entries = [json.loads(path.read_text()) for path in sorted(FIGURES.glob("*.json"))]
    if not entries:
        print("no figures: run make soak first", file=sys.stderr)  # noqa: T201
        return 1
    print("| test | what it does | load | figures |")  # noqa: T201
    print("|---|---|---|---|")  # noqa: T201
    for entry in entries:
        figures = ", ".join(f"{key} {value}" for key, value in entry["figures"].items())
        print(f"| `{entry['test']}` | {entry['does']} | {entry['seconds']:g} s | {figures} |")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
