"""Runtime: the instance's shared directory, its ready byte, stale directories, /proc readings."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from echod.layout import Layout
from echod.runtime import (
    Runtime,
    alive,
    cpu_seconds,
    parent,
    process_tree,
    pss_bytes,
    remove_stale,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime made in a temporary root, as the supervisor makes it on /dev/shm."""
    made = Runtime.create(Layout(), slots=2, root=tmp_path)
    yield made
    made.remove()


def finished_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


class TestRuntime:
    def test_the_directory_is_private_and_named_after_its_supervisor(
        self, runtime: Runtime
    ) -> None:
        """Only its owner may enter it; the name says whose it is."""
        directory = runtime.ref.directory
        assert directory.stat().st_mode & 0o777 == 0o700
        assert directory.name.startswith(f"echod-{os.getpid()}-")
        assert runtime.ref.supervisor == os.getpid()

    def test_a_worker_attaches_by_reference_and_shares_ready_and_counts(
        self, runtime: Runtime
    ) -> None:
        """Another attachment (another process's) sees the drain and the counts."""
        worker = Runtime(runtime.ref)
        worker.store.claim().observe(200, "POST", "/api/echo", 1.0)
        assert worker.readiness.is_ready()
        runtime.readiness.drain()
        assert not worker.readiness.is_ready()
        assert sum(runtime.store.totals()[1 : runtime.ref.layout.buckets]) == 1
        worker.store.close()

    def test_the_development_certificate_is_kept_with_a_private_key(self, runtime: Runtime) -> None:
        """The key is readable by its owner only."""
        cert, key = runtime.write_dev_certificate(b"CERT", b"KEY")
        assert cert.read_bytes() == b"CERT"
        assert key.read_bytes() == b"KEY"
        assert key.stat().st_mode & 0o777 == 0o600
        assert cert.parent == key.parent == runtime.ref.directory

    def test_remove_leaves_nothing_behind(self, tmp_path: Path) -> None:
        """The supervisor's cleanup removes the directory and everything in it."""
        made = Runtime.create(Layout(), slots=1, root=tmp_path)
        made.write_dev_certificate(b"CERT", b"KEY")
        made.remove()
        assert list(tmp_path.iterdir()) == []


class TestRemoveStale:
    def test_directories_of_supervisors_that_are_gone_are_removed(self, tmp_path: Path) -> None:
        """A killed instance's directory (and its private key) goes at the next start."""
        dead = tmp_path / f"echod-{finished_pid()}-abc"
        dead.mkdir()
        (dead / "owner").write_text(f"{dead.name.split('-')[1]} 1\n")
        (dead / "dev-key.pem").write_text("KEY")
        assert remove_stale(tmp_path) == [dead]
        assert not dead.exists()

    def test_a_running_instance_is_never_touched(self, runtime: Runtime, tmp_path: Path) -> None:
        """Its supervisor is alive and is the process that made it: it stays."""
        assert remove_stale(tmp_path) == []
        assert runtime.ref.directory.is_dir()

    def test_a_reused_pid_does_not_keep_a_directory_alive(self, tmp_path: Path) -> None:
        """The pid runs, but started at another time: it is another process, so it goes."""
        reused = tmp_path / f"echod-{os.getpid()}-abc"
        reused.mkdir()
        (reused / "owner").write_text(f"{os.getpid()} 1\n")
        assert remove_stale(tmp_path) == [reused]

    def test_a_directory_without_an_owner_is_left_alone(self, tmp_path: Path) -> None:
        """Whose it is cannot be told (one being made, say): it is not removed."""
        unknown = tmp_path / "echod-1-abc"
        unknown.mkdir()
        assert remove_stale(tmp_path) == []
        assert unknown.is_dir()


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
