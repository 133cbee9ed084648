"""Soak fixtures: how long each test runs, and where its figures are written."""

from __future__ import annotations

import json
import os
import re
import resource
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.conftest import make_echod  # noqa: F401 - the fixture, shared

if TYPE_CHECKING:
    from collections.abc import Callable

#: Where each test writes its figures; tests/soak/report.py renders them as a table.
FIGURES = Path(__file__).resolve().parents[2] / "build" / "reliability"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is a soak test: make test leaves them out, make soak runs them."""
    for item in items:
        if "tests/soak/" in str(item.path):
            item.add_marker(pytest.mark.soak)


@pytest.fixture(scope="session")
def soak_seconds() -> float:
    """Seconds of load per test: ECHOD_SOAK_SECONDS (60 in make soak, 3 in make soak-smoke)."""
    seconds = float(os.environ.get("ECHOD_SOAK_SECONDS", "3"))
    # Enough descriptors for a thousand connections at each end.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    return seconds


@pytest.fixture
def record(request: pytest.FixtureRequest, soak_seconds: float) -> Callable[..., None]:
    """Write the figures a test produced to build/reliability/<test>.json."""

    def write(**figures: Any) -> None:
        FIGURES.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"\W+", "_", request.node.name)
        doc = (request.node.function.__doc__ or "").strip().splitlines()[0]
        entry = {
            "test": request.node.name,
            "does": doc,
            "seconds": soak_seconds,
            "figures": figures,
        }
        (FIGURES / f"{name}.json").write_text(json.dumps(entry, indent=2) + "\n")

    return write
