"""make run: the README's first command serves, and the signals a person sends stop it."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.support.make import REPO, MakeJob
from tests.support.processes import free_port
from tests.support.tools import require_tool

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def make_run() -> Iterator[MakeJob]:
    """make run on free loopback ports, stopped after its test whatever happens."""
    port, tls_port = free_port(), free_port()
    running = MakeJob(
        "run",
        f"--host 127.0.0.1 --port {port} --tls-port {tls_port}",
        [f"http://127.0.0.1:{port}/health", f"https://127.0.0.1:{tls_port}/health"],
        stamp=".installed-serve",
    )
    yield running
    running.close()


class TestMakeRun:
    def test_ctrl_c_stops_make_and_echod(self, make_run: MakeJob) -> None:
        """Ctrl-C signals the whole process group: everything stops, nothing listens."""
        make_run.interrupt()
        assert make_run.stopped() == ([], [])

    def test_sigterm_to_make_alone_stops_echod(self, make_run: MakeJob) -> None:
        """make passes SIGTERM on to the recipe's process: echod drains and stops."""
        make_run.terminate()
        assert make_run.stopped() == ([], [])


def test_make_doc_writes_without_warnings_and_says_where() -> None:
    """pdoc resolves every name and annotation, and make doc names its output."""
    make = require_tool("make", "Debian package make")
    done = subprocess.run(
        [make, "--no-print-directory", "doc"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Warn" not in done.stdout + done.stderr
    assert "build/doc/index.html" in done.stdout
    assert (REPO / "build" / "doc" / "index.html").is_file()


def test_make_run_installs_only_what_serving_needs() -> None:
    """make run's install step takes echod and its runtime dependencies, not the dev tools."""
    make = require_tool("make", "Debian package make")
    done = subprocess.run(
        [make, "--no-print-directory", "-n", "-B", ".venv/.installed-serve"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [install] = [line for line in done.stdout.splitlines() if " install " in line]
    assert install.endswith("-c constraints.txt -e .")
    assert "[dev]" not in done.stdout
    assert "--quiet" not in install, "a person sees the install's progress"


def test_make_compose_up_without_envoy_image_says_so_in_one_line() -> None:
    """Without Envoy's image, make compose-up builds nothing and names the way without it."""
    make = require_tool("make", "Debian package make")
    missing = "docker.io/envoyproxy/envoy:v0.0.0-missing"
    done = subprocess.run(
        # docker, so that no engine is installed; the tag exists in no registry.
        [make, "--no-print-directory", "compose-up", "ENGINE=docker", f"ENVOY_IMAGE={missing}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert missing in line
    assert "make compose-up-without-envoy" in line
