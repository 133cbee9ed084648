"""The audit through each proxy, shipped and default configurations, run once for all the tests.

Each proxy gets two echod of its own, logging to files the audit reads. Its default
configuration is audited first, then its shipped one with ``--include reload``, which
drains (stops) the second echod last. The three proxies run side by side, since most of
an audit is waiting.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from tests.proxies.support import (
    DEFAULT,
    KINDS,
    PACKAGES,
    SHIPPED,
    Certificate,
    Origins,
    Proxy,
    audit,
)
from tests.support.tools import require_tool

if TYPE_CHECKING:
    from pathlib import Path

#: check 12's delay: longer than the shipped configurations' read timeout (15 s), and
#: within the origins' --max-delay (20 s).
DELAY_MS = "16000"
#: The configurations audited, in order: the shipped one last, since it drains an echod.
CONFIGURATIONS = ("default", "shipped")


@dataclass
class Audited:
    """One audit: the exit status, the report, and what went wrong if it could not run."""

    status: int
    report: dict[str, Any]
    error: str = ""

    def results(self) -> dict[str, str]:
        """Each check's result, by name."""
        return {check["name"]: check["result"] for check in self.report.get("checks", [])}

    def check(self, name: str) -> dict[str, Any]:
        """One check of the report."""
        return next(check for check in self.report["checks"] if check["name"] == name)


def _audit_kind(kind: str, directory: Path, found: dict[tuple[str, str], Audited]) -> None:
    """Audit ``kind``'s default configuration, then its shipped one, in front of two echod."""
    certificate = Certificate.make(directory)
    origins = Origins(directory)
    try:
        origins.start()
        for configuration in CONFIGURATIONS:
            config = SHIPPED[kind] if configuration == "shipped" else DEFAULT[kind]
            proxy = Proxy(kind, config, origins.ports, directory / configuration, certificate)
            proxy.directory.mkdir()
            args = ["--delay-ms", DELAY_MS]
            for log in origins.logs:
                args += ["--origin-log", str(log)]
            if configuration == "shipped":
                args += ["--include", "reload"]
                for pid in origins.pids:
                    args += ["--origin-pid", str(pid)]
            try:
                proxy.start()
                status, report, error = audit(proxy, *args)
                found[kind, configuration] = Audited(status, report, error)
            except Exception as failure:  # noqa: BLE001 - reported by the tests that read it
                found[kind, configuration] = Audited(-1, {}, f"{type(failure).__name__}: {failure}")
            finally:
                proxy.stop()
    except Exception as failure:  # noqa: BLE001
        for configuration in CONFIGURATIONS:
            found.setdefault((kind, configuration), Audited(-1, {}, f"{failure}"))
    finally:
        origins.close()


@pytest.fixture(scope="session")
def audits(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Audited]:
    """The audit of every proxy and configuration, by (proxy, configuration)."""
    for kind in KINDS:
        require_tool(kind, f"Debian package {PACKAGES[kind]}")
    found: dict[tuple[str, str], Audited] = {}
    threads = [
        threading.Thread(
            target=_audit_kind, args=(kind, tmp_path_factory.mktemp(kind), found), daemon=True
        )
        for kind in KINDS
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=200)
    return found
