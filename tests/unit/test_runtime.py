"""Runtime: the shared directory, the ready byte, the material, stale directories."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from echod.instance.material import Material
from echod.instance.runtime import Runtime, remove_stale
from echod.telemetry.metric_layout import Layout
from tests.support.processes import finished_pid

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime made in a temporary root, as the supervisor makes it on /dev/shm."""
    made = Runtime.create(Layout(), slots=2, root=tmp_path)
    yield made
    made.remove()


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
        worker.store.claim().observe(200, "POST", runtime.ref.layout.tally("/api/echo"), 1.0)
        assert worker.readiness.is_ready()
        runtime.readiness.drain()
        assert not worker.readiness.is_ready()
        assert sum(runtime.store.totals()[1 : runtime.ref.layout.buckets]) == 1
        worker.store.close()

    def test_remove_leaves_nothing_behind(self, tmp_path: Path) -> None:
        """The supervisor's cleanup removes the directory and everything in it, keys too."""
        made = Runtime.create(Layout(), slots=1, root=tmp_path)
        made.publish(Material(b"USERS", b"CERT", b"KEY", b"CA"))
        made.remove()
        assert list(tmp_path.iterdir()) == []


class TestMaterialInService:
    def test_a_worker_reads_the_users_published(self, runtime: Runtime) -> None:
        """What the supervisor publishes is what a worker that starts next reads."""
        runtime.publish(Material(b"alice:hash\n"))
        assert Runtime(runtime.ref).users() == b"alice:hash\n"
        runtime.publish(Material(b"bob:hash\n"))
        assert Runtime(runtime.ref).users() == b"bob:hash\n"

    def test_certificate_and_key_share_one_private_file(self, runtime: Runtime) -> None:
        """granian is given one file as both: no worker pairs a certificate with another's key."""
        runtime.publish(Material(b"USERS", b"CERT\n", b"KEY\n"))
        files = runtime.tls_files()
        assert files.cert == files.key
        assert files.cert.read_bytes() == b"CERT\nKEY\n"
        assert files.cert.stat().st_mode & 0o777 == 0o600
        assert files.client_ca is None

    def test_files_keep_their_paths_and_change_in_one_step(self, runtime: Runtime) -> None:
        """A reload replaces the content by a rename: a new inode at the same path."""
        runtime.publish(Material(b"USERS", b"OLD", b"KEY"))
        before = runtime.tls_files()
        inode = before.cert.stat().st_ino
        runtime.publish(Material(b"USERS", b"NEW", b"KEY"))
        assert runtime.tls_files() == before
        assert before.cert.stat().st_ino != inode
        assert before.cert.read_bytes() == b"NEW\nKEY"
        assert sorted(path.name for path in runtime.ref.directory.iterdir()) == [
            "metrics", "owner", "ready", "reloads", "state", "state-journal", "state.lock",
            "tls.pem", "users",
        ]  # fmt: skip

    def test_a_client_ca_comes_and_goes_with_its_field(self, runtime: Runtime) -> None:
        """Published when the material has one; removed when it no longer does."""
        runtime.publish(Material(b"USERS", b"CERT", b"KEY", b"CA"))
        client_ca = runtime.tls_files().client_ca
        assert client_ca is not None
        assert client_ca.read_bytes() == b"CA"
        runtime.publish(Material(b"USERS", b"CERT", b"KEY"))
        assert runtime.tls_files().client_ca is None
        assert not client_ca.exists()


class TestReloadRecord:
    def test_it_starts_with_no_reloads_and_no_certificate(self, runtime: Runtime) -> None:
        """Zero counts; no expiry until a certificate is put in service."""
        record = runtime.reloads
        assert (record.successes, record.failures, record.last_success) == (0, 0, 0)
        assert record.cert_not_after is None

    def test_every_process_reads_what_the_supervisor_writes(self, runtime: Runtime) -> None:
        """Counts add up, the last outcome and its time are kept, a failure keeps the expiry."""
        runtime.reloads.started(100.0, 5000.0)
        runtime.reloads.succeeded(200.0, 6000.0)
        runtime.reloads.failed(300.0)
        worker = Runtime(runtime.ref).reloads
        assert (worker.successes, worker.failures) == (1, 1)
        assert (worker.last_success, worker.last_time) == (0, 300.0)
        assert worker.cert_not_after == 6000.0
        runtime.reloads.succeeded(400.0, None)
        assert (worker.successes, worker.last_success) == (2, 1)
        assert worker.cert_not_after is None


class TestRemoveStale:
    def test_directories_of_supervisors_that_are_gone_are_removed(self, tmp_path: Path) -> None:
        """A killed instance's directory (and its private key) goes at the next start."""
        dead = tmp_path / f"echod-{finished_pid()}-abc"
        dead.mkdir()
        (dead / "owner").write_text(f"{dead.name.split('-')[1]} 1\n")
        (dead / "tls.pem").write_text("KEY")
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
