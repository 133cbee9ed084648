"""The proxy configurations of deploy/proxies and the matrix docs/proxies.md publishes.

The configurations run for real in ``make test-proxies``; here, without the proxies,
the published matrix is held to the expected one (tests/proxies/expected.yaml), and
nginx and Caddy (which ``make test`` installs) check the shipped files' syntax.
"""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from echod.audit.checks import CHECKS, RELOAD_CHECKS
from tests.deploy.support import REPO
from tests.proxies.support import DEFAULT, KINDS, SHIPPED, Certificate, Proxy, expected_matrix
from tests.support.tools import require_tool

if TYPE_CHECKING:
    from pathlib import Path

DOCUMENT = REPO / "docs" / "proxies.md"
#: The matrix's columns: proxy and configuration, in order.
COLUMNS = [(kind, configuration) for kind in KINDS for configuration in ("shipped", "default")]


def published() -> dict[str, list[str]]:
    """Each row of the matrix in docs/proxies.md: the check's name and its six results."""
    rows = {}
    text = DOCUMENT.read_text().split("## The matrix", 1)[1].split("\n## ", 1)[0]
    for line in text.splitlines():
        found = re.match(r"\| (\d+) \| `([a-z0-9-]+)` \|(.*)\|$", line)
        if found:
            cells = [cell.strip() for cell in found[3].split("|")]
            rows[found[2]] = cells[: len(COLUMNS)]
    return rows


def test_the_published_matrix_is_the_expected_one() -> None:
    """Every check, every proxy and configuration: what docs/proxies.md says is expected."""
    expected = expected_matrix()
    rows = published()
    assert list(rows) == [entry.name for entry in (*CHECKS, *RELOAD_CHECKS)]
    for name, cells in rows.items():
        for (kind, configuration), cell in zip(COLUMNS, cells, strict=True):
            want = expected[kind][configuration].get(name)
            said = " or ".join(want) if isinstance(want, list) else (want or "")
            assert cell == said, f"{name}, {kind} {configuration}"


def test_every_proxy_has_a_shipped_and_a_default_configuration() -> None:
    """The files the matrix names exist, and the expected matrix covers each."""
    expected = expected_matrix()
    for kind in KINDS:
        assert SHIPPED[kind].is_file()
        assert DEFAULT[kind].is_file()
        assert set(expected[kind]) == {"shipped", "default"}


@pytest.mark.parametrize("kind", ["nginx", "caddy"])
def test_the_shipped_configuration_is_valid(kind: str, tmp_path: Path) -> None:
    """nginx -t, and caddy validate, on the file as make test-proxies runs it."""
    tool = require_tool(kind, f"Debian package {kind}")
    proxy = Proxy(kind, SHIPPED[kind], [3000, 3001], tmp_path, Certificate.make(tmp_path))
    _, made = proxy.render()
    if kind == "nginx":
        command = [tool, "-t", "-p", str(tmp_path), "-c", str(made), "-e", "stderr"]
    else:
        command = [tool, "validate", "--config", str(made), "--adapter", "caddyfile"]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path),
            "XDG_DATA_HOME": str(tmp_path),
        },
    )
    assert done.returncode == 0, done.stderr + done.stdout
