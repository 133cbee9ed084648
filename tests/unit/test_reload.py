"""Reload: one reload at a time, bad files keep the old, changed files are noticed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from echod.instance.material import build, read
from echod.instance.reload import Reloader
from echod.instance.runtime import Runtime
from echod.settings.config import Settings
from echod.telemetry.metric_layout import Layout
from tests.support.material import htpasswd

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime with room for a few workers."""
    made = Runtime.create(Layout(), slots=4, root=tmp_path)
    yield made
    made.remove()


class Instance:
    """A reloader over a users file, whose listeners are only counted when signalled.

    Its one worker is a child process that sleeps; granian's part, replacing it, is
    played by :meth:`replace_worker`.
    """

    def __init__(self, runtime: Runtime, tmp_path: Path, interval: float = 0) -> None:
        """Serve alice from ``tmp_path/users``."""
        self.users = tmp_path / "users"
        self.users.write_bytes(htpasswd(alice="wonderland"))
        self.settings = Settings(
            users_file=self.users, tls_port=0, reload_interval=interval, shutdown_timeout=0.5
        )
        self.runtime = runtime
        self.signalled = 0
        self.worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        runtime.store.claim(self.worker.pid)
        seen = read(self.settings)
        material = build(self.settings, seen, None)
        runtime.publish(material)
        self.reloader = Reloader(
            self.settings, runtime, material, seen, workers=1, signal_listeners=self.signal
        )

    def signal(self) -> None:
        """What SIGHUP to the listeners would start: the worker is being replaced."""
        self.signalled += 1

    def replace_worker(self) -> None:
        """granian's part: a new worker (this process) serves, and the old one exits."""
        self.runtime.store.claim(os.getpid())
        self.stop()

    def look_soon(self) -> None:
        """Let the next look at the files be due."""
        time.sleep(self.settings.reload_interval * 2)

    def stop(self) -> None:
        """End the worker process, if it still runs."""
        self.worker.kill()
        self.worker.wait()


@pytest.fixture
def make_instance(runtime: Runtime, tmp_path: Path) -> Iterator[Callable[..., Instance]]:
    """Make the instance of a test (with ``interval`` between looks); its worker is ended."""
    made: list[Instance] = []

    def make(interval: float = 0) -> Instance:
        made.append(Instance(runtime, tmp_path, interval))
        return made[-1]

    yield make
    for instance in made:
        instance.stop()


@pytest.fixture
def instance(make_instance: Callable[..., Instance]) -> Instance:
    """An instance serving alice, without looks at the files."""
    return make_instance()


def reloaded(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The "reloaded" lines logged so far."""
    return [record for record in caplog.records if record.getMessage() == "reloaded"]


class TestReload:
    def test_new_users_are_published_and_the_listeners_signalled(
        self, instance: Instance, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The workers that start next read bob; the reload ends when they serve."""
        caplog.set_level(logging.INFO, "echod")
        instance.users.write_bytes(htpasswd(bob="builder"))
        instance.reloader.request()
        instance.reloader.step()
        assert b"bob:" in instance.runtime.users()
        assert instance.signalled == 1
        assert reloaded(caplog) == []
        instance.replace_worker()
        instance.reloader.step()
        [line] = reloaded(caplog)
        assert line.fields["changed"] == ["--users-file"]  # type: ignore[attr-defined]
        assert line.fields["users"] == 1  # type: ignore[attr-defined]
        assert instance.runtime.reloads.successes == 1
        assert instance.reloader.wake_in() is None

    def test_bad_files_keep_the_old_and_are_counted(
        self, instance: Instance, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Nothing is published, no listener is signalled, the reason is an error line."""
        before = instance.runtime.users()
        instance.users.write_bytes(b"bob:not-bcrypt\n")
        instance.reloader.request()
        instance.reloader.step()
        assert instance.runtime.users() == before
        assert instance.signalled == 0
        assert (instance.runtime.reloads.failures, instance.runtime.reloads.last_success) == (1, 0)
        [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
        assert error.getMessage().startswith("reload failed: users file")
        assert "the files in service stay" in error.getMessage()

    def test_unchanged_files_replace_no_worker(
        self, instance: Instance, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A SIGHUP with nothing new is a success that changes nothing."""
        caplog.set_level(logging.INFO, "echod")
        instance.reloader.request()
        instance.reloader.step()
        assert instance.signalled == 0
        [line] = reloaded(caplog)
        assert line.fields["changed"] == []  # type: ignore[attr-defined]
        assert instance.runtime.reloads.successes == 1

    def test_workers_not_replaced_in_time_fail_the_reload(
        self, make_instance: Callable[..., Instance], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A reload that granian does not finish is given up on, so that others may run."""
        monkeypatch.setattr("echod.instance.reload.RESPAWN_INTERVAL", 0.0)
        monkeypatch.setattr("echod.instance.reload.ROLLOUT_SLACK", 0.0)
        instance = make_instance()
        instance.users.write_bytes(htpasswd(bob="builder"))
        instance.reloader.request()
        instance.reloader.step()
        time.sleep(1.1)  # ceil(--shutdown-timeout) for the one worker
        instance.reloader.step()
        assert instance.reloader.wake_in() is None
        assert instance.runtime.reloads.failures == 1

    def test_a_storm_of_requests_collapses_to_one_more_reload(self, instance: Instance) -> None:
        """Ten SIGHUPs during a reload: that one ends, then exactly one more runs."""
        instance.users.write_bytes(htpasswd(bob="builder"))
        instance.reloader.request()
        instance.reloader.step()
        instance.users.write_bytes(htpasswd(carol="singer"))
        for _ in range(10):
            instance.reloader.request()
            instance.reloader.step()
        assert instance.signalled == 1, "a second reload started while one ran"
        assert b"carol" not in instance.runtime.users()
        instance.replace_worker()
        instance.reloader.step()
        assert instance.signalled == 2
        assert b"carol:" in instance.runtime.users()
        assert instance.reloader.wake_in() is not None, "the second reload is running"


class TestLooks:
    def test_a_changed_file_starts_a_reload_at_the_next_look(
        self, make_instance: Callable[..., Instance]
    ) -> None:
        """No signal needed; an unchanged file starts nothing."""
        instance = make_instance(interval=0.01)
        wait = instance.reloader.wake_in()
        assert wait is not None
        assert 0 <= wait <= 0.01
        instance.look_soon()
        instance.reloader.step()
        assert instance.signalled == 0
        instance.users.write_bytes(htpasswd(bob="builder"))
        instance.look_soon()
        instance.reloader.step()
        assert instance.signalled == 1

    def test_a_bad_file_is_tried_once_not_at_every_look(
        self, make_instance: Callable[..., Instance], runtime: Runtime
    ) -> None:
        """The failure is counted once; the next change is tried again."""
        instance = make_instance(interval=0.01)
        instance.users.write_bytes(b"garbage\n")
        for _ in range(3):
            instance.look_soon()
            instance.reloader.step()
        assert runtime.reloads.failures == 1
        instance.users.write_bytes(htpasswd(bob="builder"))
        instance.look_soon()
        instance.reloader.step()
        assert instance.signalled == 1

    def test_no_looks_when_the_interval_is_zero(self, instance: Instance) -> None:
        """--reload-interval 0: only SIGHUP reloads."""
        assert instance.reloader.wake_in() is None
