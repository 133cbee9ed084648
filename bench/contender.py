"""A server under comparison: a bash command in a session of its own, its CPU and output.

bench.compare starts two of these. The CPU time of a server is that of its whole process
tree, as bench.processes reads it, so that supervisors, workers and threads all count.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import IO

from bench.processes import cpu_seconds, process_tree

#: Seconds a server gets to stop after SIGTERM before it is killed.
STOP_SECONDS = 10.0


class CompareError(Exception):
    """A server or the load failed; the message says which and how."""


@dataclass
class Contender:
    """One server: its command, started in a session of its own, and its output."""

    name: str
    command: str
    port: int
    log: IO[bytes] = field(default_factory=tempfile.TemporaryFile)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        """Its HTTP URL, without a path."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the command, output to the log."""
        self.process = subprocess.Popen(  # noqa: S602 - the command is the caller's, as given
            self.command.replace("{port}", str(self.port)),
            shell=True,
            # bash, unlike dash, replaces itself with the last command it runs: the server
            # is then the process waited for, so none is left for init to reap.
            executable=shutil.which("bash"),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def running(self) -> subprocess.Popen[bytes]:
        """The process; a :class:`CompareError` if it is not running."""
        if self.process is None or self.process.poll() is not None:
            raise CompareError(f"{self.name} is not running")
        return self.process

    def cpu_seconds(self) -> float:
        """User and system CPU seconds of every live process of its tree."""
        return cpu_seconds(process_tree(self.running().pid))

    def stop(self) -> None:
        """SIGTERM to its session, then SIGKILL to what is left after STOP_SECONDS."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            # The server may have put processes in groups of their own: kill its whole tree.
            for pid in process_tree(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait(STOP_SECONDS)

    def tail(self, size: int = 2000) -> str:
        """The end of its output."""
        self.log.flush()
        self.log.seek(max(self.log.seek(0, os.SEEK_END) - size, 0))
        return self.log.read().decode(errors="replace")
