"""Reload: checked in a process of its own; bad files keep the old, changed files are noticed."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import pytest

from echod.instance.checks import build, summary
from echod.instance.material import read
from echod.instance.reload import Reloaded, Reloader
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
    """A reloader over a users file; what it publishes is counted, as a process would take it."""

    def __init__(self, runtime: Runtime, tmp_path: Path, interval: float = 0) -> None:
        """Serve alice from ``tmp_path/users``."""
        self.users = tmp_path / "users"
        self.users.write_bytes(htpasswd(alice="wonderland"))
        self.settings = Settings(users_file=self.users, tls_port=0, reload_interval=interval)
        self.runtime = runtime
        seen = read(self.settings)
        material = build(self.settings, seen, None)
        runtime.publish(material)
        self.reloader = Reloader(self.settings, runtime, material, summary(material), seen)
        self.published: list[Reloaded] = []

    def step(self) -> Reloaded | None:
        """One step of the reloader; what it published, the serving processes would take."""
        reloaded = self.reloader.step()
        if reloaded is not None:
            self.published.append(reloaded)
        return reloaded

    def look_soon(self) -> None:
        """Let the next look at the files be due."""
        time.sleep(self.settings.reload_interval * 2)


@pytest.fixture
def make_instance(runtime: Runtime, tmp_path: Path) -> Callable[..., Instance]:
    """Make the instance of a test (with ``interval`` between looks)."""

    def make(interval: float = 0) -> Instance:
        return Instance(runtime, tmp_path, interval)

    return make


@pytest.fixture
def instance(make_instance: Callable[..., Instance]) -> Instance:
    """An instance serving alice, without looks at the files."""
    return make_instance()


def reloaded(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The "reloaded" lines logged so far."""
    return [record for record in caplog.records if record.getMessage() == "reloaded"]


class TestReload:
    def test_new_users_are_published_then_the_reload_ends_when_served(
        self, instance: Instance, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The serving processes read bob under the next generation; done, it is logged."""
        caplog.set_level(logging.INFO, "echod")
        instance.users.write_bytes(htpasswd(bob="builder"))
        instance.reloader.request()
        published = instance.step()
        assert published is not None
        assert b"bob:" in instance.runtime.users()
        assert published.generation == instance.runtime.reloads.generation == 1
        assert published.changed == ["--users-file"]
        assert reloaded(caplog) == []
        instance.reloader.done(published)
        [line] = reloaded(caplog)
        assert line.fields["changed"] == ["--users-file"]  # type: ignore[attr-defined]
        assert line.fields["users"] == 1  # type: ignore[attr-defined]
        assert instance.runtime.reloads.successes == 1
        assert instance.reloader.wake_in() is None

    def test_bad_files_keep_the_old_and_are_counted(
        self, instance: Instance, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Nothing is published, the reason is an error line."""
        before = instance.runtime.users()
        instance.users.write_bytes(b"bob:not-bcrypt\n")
        instance.reloader.request()
        assert instance.step() is None
        assert instance.runtime.users() == before
        assert instance.runtime.reloads.generation == 0
        assert (instance.runtime.reloads.failures, instance.runtime.reloads.last_success) == (1, 0)
        [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
        assert error.getMessage().startswith("reload failed: users file")
        assert "the files in service stay" in error.getMessage()

    def test_unchanged_files_publish_nothing(
        self, instance: Instance, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A SIGHUP with nothing new is a success that changes nothing."""
        caplog.set_level(logging.INFO, "echod")
        instance.reloader.request()
        assert instance.step() is None
        [line] = reloaded(caplog)
        assert line.fields["changed"] == []  # type: ignore[attr-defined]
        assert instance.runtime.reloads.successes == 1

    def test_a_reload_not_served_in_time_is_a_failure(
        self, instance: Instance, caplog: pytest.LogCaptureFixture
    ) -> None:
        """What serves it says so, and the failure is counted; the next reload may run."""
        instance.users.write_bytes(htpasswd(bob="builder"))
        instance.reloader.request()
        assert instance.step() is not None
        instance.reloader.failed("the workers did not all serve the new files in time")
        assert instance.runtime.reloads.failures == 1
        [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
        assert "did not all serve" in error.getMessage()

    def test_a_storm_of_requests_is_one_reload(self, instance: Instance) -> None:
        """Ten SIGHUPs before the reloader's next step: one reload, then none."""
        instance.users.write_bytes(htpasswd(carol="singer"))
        for _ in range(10):
            instance.reloader.request()
        instance.step()
        instance.step()
        assert len(instance.published) == 1
        assert b"carol:" in instance.runtime.users()
        assert instance.reloader.wake_in() is None


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
        instance.step()
        assert instance.published == []
        instance.users.write_bytes(htpasswd(bob="builder"))
        instance.look_soon()
        instance.step()
        assert len(instance.published) == 1

    def test_a_bad_file_is_tried_once_not_at_every_look(
        self, make_instance: Callable[..., Instance], runtime: Runtime
    ) -> None:
        """The failure is counted once; the next change is tried again."""
        instance = make_instance(interval=0.01)
        instance.users.write_bytes(b"garbage\n")
        for _ in range(3):
            instance.look_soon()
            instance.step()
        assert runtime.reloads.failures == 1
        instance.users.write_bytes(htpasswd(bob="builder"))
        instance.look_soon()
        instance.step()
        assert len(instance.published) == 1

    def test_no_looks_when_the_interval_is_zero(self, instance: Instance) -> None:
        """--reload-interval 0: only SIGHUP reloads."""
        assert instance.reloader.wake_in() is None
