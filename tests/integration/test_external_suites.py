"""Tools nobody here wrote, run against echod: sslyze for TLS, REDbot for HTTP."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.make import REPO
from tests.support.tools import require_tool

if TYPE_CHECKING:
    from tests.support.processes import Echod

SSLYZE = REPO / "build" / "tools" / "sslyze" / "bin" / "sslyze"
# What sslyze may find short of Mozilla's intermediate profile: the development
# certificate is self-signed, so no store trusts it. Nothing else.
TRUST_ONLY = {"certificate_path_validation"}


def sslyze() -> str:
    """sslyze, from the virtualenv of its own that make test installs."""
    if SSLYZE.exists():
        return str(SSLYZE)
    message = "sslyze is missing: make test installs it into build/tools/sslyze"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def notes(url: str) -> list[dict[str, Any]]:
    """REDbot's notes on ``url``: id, level (GOOD, INFO, WARN, BAD) and summary."""
    redbot = require_tool("redbot", "redbot package (pip; make test installs it)")
    done = subprocess.run(
        [redbot, "-o", "har", url], capture_output=True, text=True, timeout=60, check=True
    )
    [entry] = json.loads(done.stdout)["log"]["entries"]
    messages: list[dict[str, Any]] = entry["_red_messages"]
    return messages


class TestSslyze:
    def test_https_meets_mozilla_s_intermediate_profile_but_for_trust(self, echod: Echod) -> None:
        """Protocols, ciphers, curves, key and extensions as Mozilla advises; TLS 1.2 and 1.3."""
        host = f"localhost:{echod.tls_port}"
        done = subprocess.run(
            [sslyze(), "--mozilla_config=intermediate", host],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        report = done.stdout
        assert "SCANS COMPLETED" in report, report[-2000:]
        compliance = report.split("COMPLIANCE AGAINST TLS CONFIGURATION", 1)[1]
        issues = set(re.findall(r"^\s+\* (\w+):", compliance, re.MULTILINE))
        assert issues <= TRUST_ONLY, compliance
        for old in ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1"):
            assert re.search(rf"\* {re.escape(old)} Cipher Suites:\s+Attempted to connect", report)
        for current in ("TLS 1.2", "TLS 1.3"):
            assert re.search(rf"\* {re.escape(current)} Cipher Suites:\s+Attempted to connect.*"
                             rf"\n\s+The server accepted", report), current  # fmt: skip


class TestRedbot:
    @pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/openapi.json"])
    def test_redbot_finds_nothing_to_warn_about(self, echod: Echod, path: str) -> None:
        """REDbot checks framing, dates, lengths and caching: no warning, nothing bad."""
        found = notes(echod.url + path)
        assert found, "REDbot said nothing at all"
        assert [note for note in found if note["level"] in {"WARN", "BAD"}] == []
