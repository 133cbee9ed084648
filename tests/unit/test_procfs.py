"""Procfs: a process's parent, liveness and memory, and the benchmarks' tree and CPU time."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.processes import cpu_seconds, process_tree
from echod.procfs import alive, parent, pss_bytes
from tests.support.processes import finished_pid


class TestProcesses:
    def test_parent_and_liveness(self) -> None:
        """This process's parent is read back; a reaped process is not alive."""
        assert parent(os.getpid()) == os.getppid()
        assert alive(os.getpid())
        assert not alive(finished_pid())
        assert parent(finished_pid()) is None

    def test_the_tree_holds_children(self) -> None:
        """A child started here is in this process's tree."""
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            tree = process_tree(os.getpid())
            assert tree[0] == os.getpid()
            assert child.pid in tree
        finally:
            child.kill()
            child.wait()

    def test_memory_and_cpu_are_read(self) -> None:
        """PSS is a positive number of bytes; CPU time only grows."""
        assert (pss_bytes(os.getpid()) or 0) > 0
        assert pss_bytes(finished_pid()) is None
        before = cpu_seconds([os.getpid()])
        sum(range(2_000_000))
        assert cpu_seconds([os.getpid()]) >= before > 0
