"""Turn docs/openapi.yaml into src/echod/openapi.json, the copy echod serves; make openapi runs it.

echod has no YAML parser at run time, so it ships the document as JSON. A test fails
when the JSON is not what this script makes from the YAML.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "docs" / "openapi.yaml"
TARGET = REPO / "src" / "echod" / "openapi.json"


def render(source: str) -> str:
    """Return the JSON text of the YAML document ``source``.

    Raises:
        ValueError: the YAML holds something JSON cannot say as it is, such as a number
            as a key (quote response codes: ``'200':``) or a date.
    """
    document: Any = yaml.safe_load(source)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if json.loads(text) != document:
        raise ValueError("the document does not survive JSON as it is; quote keys and dates")
    return text


def main(argv: list[str] | None = None) -> int:
    """Write the JSON next to echod's code; with ``--check``, only say whether it is current."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the JSON is stale")
    args = parser.parse_args(argv)
    text = render(SOURCE.read_text(encoding="utf-8"))
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            sys.stderr.write(f"{TARGET.relative_to(REPO)} is stale: run make openapi\n")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
