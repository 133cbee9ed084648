"""make targets run as a person runs them: in a terminal's process group, stopped by signals."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from bench.processes import process_tree
from tests.support.tools import require_tool
from tests.support.waiting import eventually

__all__ = ["REPO", "MakeJob", "answers"]

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


def answers(url: str) -> bool:
    """Whether something answers GET on ``url``."""
    try:
        httpx.get(url, timeout=1, verify=False)  # noqa: S501 - the development certificate
    except httpx.TransportError:
        return False
    return True


class MakeJob:
    """``make TARGET ARGS=...`` in its own process group, as a terminal's job is."""

    def __init__(self, target: str, args: str, urls: list[str], stamp: str) -> None:
        """Start the target and wait until every URL in ``urls`` answers.

        ``stamp`` is the file under .venv that says the target's virtualenv is installed;
        without it the test is skipped (failed with CI set), rather than installing.
        """
        if not (REPO / ".venv" / stamp).exists():
            message = f"the virtualenv of make {target} is not installed: run make install"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        make = require_tool("make", "Debian package make")
        self.urls = urls
        self.process = subprocess.Popen(
            [make, "--no-print-directory", target, f"ARGS={args}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

        def serving() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"make {target} exited before it served {urls}")
            return all(answers(url) for url in urls)

        try:
            eventually(
                serving,
                timeout=START_TIMEOUT,
                interval=0.1,
                failure=f"make {target} did not serve {urls}",
            )
        except pytest.fail.Exception:
            self.close()
            raise
        self.tree = process_tree(self.process.pid)

    def interrupt(self) -> None:
        """Press Ctrl-C: SIGINT to the whole process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def terminate(self) -> None:
        """SIGTERM to the make process alone, as a process manager sends it."""
        self.process.send_signal(signal.SIGTERM)

    def stopped(self) -> tuple[list[int], list[str]]:
        """Wait for make to exit; return the processes and the URLs still alive after it."""
        self.process.communicate(timeout=60)
        time.sleep(0.5)
        alive = [pid for pid in self.tree if Path(f"/proc/{pid}").exists()]
        return alive, [url for url in self.urls if answers(url)]

    def close(self) -> None:
        """Kill whatever is left of make's process group, and close the pipes.

        The pipes are closed, not read to their end: a process that make left behind
        may still hold them open.
        """
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
