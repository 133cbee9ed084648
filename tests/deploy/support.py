"""The deployment files, the outside tools that check them, and a real Prometheus server."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from scripts.stack import stop
from tests.support.tools import require_tool
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from collections.abc import Mapping

REPO = Path(__file__).parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yaml"
START_TIMEOUT = 30.0


def load_yaml(path: Path) -> Any:
    """The one YAML document in ``path``."""
    return yaml.safe_load(path.read_text())


def run_tool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run a checker to its end and return what it said; it must not take a minute."""
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


class Prometheus:
    """The Prometheus server of the Debian package, on a loopback port, with its own data."""

    def __init__(self, port: int) -> None:
        """Prepare a server for ``127.0.0.1:port``; :meth:`start` gives it its config."""
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._directory = tempfile.TemporaryDirectory(prefix="echod-prometheus-")
        self._log = Path(self._directory.name, "prometheus.log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, config: Mapping[str, Any]) -> Prometheus:
        """Write ``config``, start the server and wait until it is ready."""
        binary = require_tool("prometheus", "Debian package prometheus")
        directory = Path(self._directory.name)
        config_file = directory / "prometheus.yaml"
        config_file.write_text(yaml.safe_dump(dict(config), sort_keys=False))
        with self._log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_file}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=log,
            )
        self.wait_ready(self.process)
        return self

    def wait_ready(self, process: subprocess.Popen[Any]) -> None:
        """Wait until the server answers ready; fail if ``process`` (that runs it) exits."""

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"prometheus stopped: exit status {process.returncode}: {self.log()}")
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
            return False

        eventually(
            ready,
            timeout=START_TIMEOUT,
            interval=0.1,
            failure=lambda: f"prometheus was not ready: {self.log()}",
        )

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>``; the answer must be a success. Return its ``data``."""
        answer = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10).json()
        assert answer["status"] == "success", answer
        assert not answer.get("warnings"), answer
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector ``expr`` evaluates to now."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(self, expr: str, timeout: float = START_TIMEOUT) -> list[dict[str, Any]]:
        """Wait until ``expr`` has a result; return it, or fail after ``timeout`` seconds."""
        return eventually(
            lambda: self.query(expr),
            timeout=timeout,
            interval=0.2,
            failure=lambda: f"{expr} had no result: {self.log()}",
        )

    def log(self) -> str:
        """What the server logged so far."""
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def stop(self) -> int | None:
        """Stop the server (SIGTERM, SIGKILL after 30 s), remove its data; return its status."""
        status = None if self.process is None else stop(self.process)
        self._directory.cleanup()
        return status
