"""The state: the rules of a scenario, and the store in the runtime directory (SQLite).

The store's behaviour beside Redis's, and what two processes do to it, are in
tests/integration/test_state_stores.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import os
import sqlite3
from typing import TYPE_CHECKING

import pytest

from echod.state import local
from echod.state.model import (
    Ask,
    Entry,
    Limit,
    Log,
    Outcome,
    StateUnavailable,
    decide,
    refill,
    render_log,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SMALL = 256 * 1024


def keyed(
    key: str = "k", *, fail: int = 0, every: int = 0, ttl: int = 600, limit: Limit | None = None
) -> Ask:
    """An attempt under ``key`` that fails with 503 as its rule says, and passes with 200."""
    return Ask(
        f"k:{key}",
        keyed=True,
        ttl=ttl,
        fail=fail,
        fail_every=every,
        fail_status=503,
        pass_status=200,
        limit=limit,
        info=b'{"pid":1}',
    )


class Clock:
    """A clock the test moves: Unix time and the monotonic clock, in microseconds."""

    def __init__(self) -> None:
        """Start at a fixed time."""
        self.wall = 1_800_000_000_000_000
        self.mono = 5_000_000_000

    def __call__(self) -> tuple[int, int]:
        """Now."""
        return self.wall, self.mono

    def advance(self, seconds: float) -> None:
        """Move both clocks on."""
        self.wall += round(seconds * 1_000_000)
        self.mono += round(seconds * 1_000_000)


@pytest.fixture
def clock() -> Clock:
    """The clock of the store under test."""
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[local.LocalStore]:
    """A small state file, opened with the test's clock."""
    local.create(tmp_path / "state", SMALL)
    opened = local.LocalStore(tmp_path / "state", clock)
    yield opened
    opened.close()


class TestRules:
    def test_a_new_bucket_is_full_and_earns_at_its_rate(self) -> None:
        """10 tokens a second: 0.25 s after it was at 2, it holds 4.5; never over the burst."""
        limit = Limit(10, 1, 20)
        assert refill(None, None, 0, limit) == 20
        assert refill(2.0, 1_000_000, 1_250_000, limit) == 4.5
        assert refill(19.0, 0, 10_000_000, limit) == 20
        assert refill(3.0, 2_000_000, 1_000_000, limit) == 3.0  # a clock step back earns nothing

    def test_fail_fails_the_first_n_and_fail_every_every_kth(self) -> None:
        """fail=2: attempts 1 and 2; fail_every=3: attempts 3 and 6."""
        assert [decide(keyed(fail=2), n, None)[0].status for n in range(1, 5)] == [503] * 2 + [
            200
        ] * 2
        statuses = [decide(keyed(every=3), n, None)[0].status for n in range(1, 7)]
        assert statuses == [200, 200, 503, 200, 200, 503]

    def test_an_empty_bucket_is_429_and_keeps_its_tokens(self) -> None:
        """Under one token: limited, before any rule; the tokens stay as they were."""
        outcome, kept = decide(keyed(fail=5, limit=Limit(1, 60, 1)), 1, 0.5)
        assert (outcome.status, outcome.limited, outcome.failed, kept) == (429, True, False, 0.5)
        outcome, kept = decide(keyed(limit=Limit(1, 60, 1)), 1, 1.5)
        assert (outcome.status, kept) == (200, 0.5)

    @pytest.mark.parametrize(
        ("tokens", "limit", "remaining", "next_token"),
        [
            (0.0, Limit(2, 60, 2), 0, 30),
            (0.5, Limit(2, 60, 2), 0, 15),
            (1.0, Limit(2, 60, 2), 1, 30),
            (4.9, Limit(10, 1, 10), 4, 1),
            (0.0, Limit(1, 3600, 1), 0, 3600),
        ],
    )
    def test_remaining_and_the_next_token(
        self, tokens: float, limit: Limit, remaining: int, next_token: int
    ) -> None:
        """r is the whole tokens left; t the whole seconds (at least 1) to the next one."""
        outcome = Outcome(1, 200, limited=False, failed=False, tokens=tokens)
        assert (outcome.remaining(), outcome.next_token(limit)) == (remaining, next_token)

    def test_the_log_has_the_documented_shape(self) -> None:
        """Keys in the documented order, the time in RFC 3339 with microseconds."""
        info = b'{"instance":"i","pid":7,"listener":"http","httpVersion":"1.1",'
        info += b'"method":"GET","path":"/api/inspect","headers":{"user-agent":"t"}}'
        log = Log([Entry(1, 1_800_000_000_000_001, 503, None, info),
                   Entry(2, 1_800_000_000_250_500, 200, 250_499, info)], 3)  # fmt: skip
        rendered = render_log("k", log)
        assert rendered["dropped"] == 3
        first, second = rendered["attempts"]
        assert list(first) == [
            "attempt", "time", "instance", "pid", "listener", "httpVersion", "method", "path",
            "status", "sinceMs", "headers",
        ]  # fmt: skip
        assert first["time"] == "2027-01-15T08:00:00.000001Z"
        assert (first["sinceMs"], second["sinceMs"]) == (None, 250.499)
        assert second["headers"] == {"user-agent": "t"}


class TestLocalStore:
    def test_attempts_are_numbered_and_logged_in_order(
        self, store: local.LocalStore, clock: Clock
    ) -> None:
        """fail=2: 503, 503, 200; the log has each, with the time since the one before."""
        statuses = []
        for _ in range(3):
            statuses.append(store.attempt_now(keyed(fail=2)).status)
            clock.advance(0.5)
        assert statuses == [503, 503, 200]
        log = asyncio.run(store.attempts("k"))
        assert log is not None
        assert [(e.attempt, e.status, e.since_us) for e in log.entries] == [
            (1, 503, None), (2, 503, 500_000), (3, 200, 500_000),
        ]  # fmt: skip

    def test_a_key_lives_ttl_seconds_after_its_last_attempt(
        self, store: local.LocalStore, clock: Clock
    ) -> None:
        """Within its ttl it counts on; past it, it starts again from 1."""
        store.attempt_now(keyed(ttl=10))
        clock.advance(9)
        assert store.attempt_now(keyed(ttl=10)).attempt == 2
        clock.advance(10.001)
        assert asyncio.run(store.attempts("k")) is None
        assert store.attempt_now(keyed(ttl=10)).attempt == 1

    def test_the_log_keeps_the_last_1000_and_counts_the_dropped(
        self, store: local.LocalStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past the bound the oldest goes; the count goes on."""
        monkeypatch.setattr(local, "MAX_ATTEMPTS", 5)
        for _ in range(8):
            store.attempt_now(keyed())
        log = asyncio.run(store.attempts("k"))
        assert log is not None
        assert ([e.attempt for e in log.entries], log.dropped) == ([4, 5, 6, 7, 8], 3)

    def test_past_the_live_keys_the_least_recently_used_goes(
        self, store: local.LocalStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Three keys at most: a fourth evicts the one used longest ago, and says so."""
        monkeypatch.setattr(local, "MAX_KEYS", 3)
        for key in ("a", "b", "c"):
            assert store.attempt_now(keyed(key)).evicted_for_keys == 0
            clock.advance(1)
        store.attempt_now(keyed("a"))  # a is used again: b is now the oldest
        assert store.attempt_now(keyed("d")).evicted_for_keys == 1
        assert asyncio.run(store.attempts("b")) is None
        assert asyncio.run(store.attempts("a")) is not None

    def test_a_full_file_evicts_the_oldest_keys_and_goes_on(self, tmp_path: Path) -> None:
        """The file never grows: when its pages run out, old keys make room (space)."""
        local.create(tmp_path / "tiny", 64 * 1024)
        store = local.LocalStore(tmp_path / "tiny")
        try:
            size = (tmp_path / "tiny").stat().st_size
            evicted = 0
            padding = b'{"pad":"' + b"x" * 900 + b'"}'
            for n in range(200):
                ask = dataclasses.replace(keyed(str(n)), info=padding)
                evicted += store.attempt_now(ask).evicted_for_space
            assert evicted > 100
            assert (tmp_path / "tiny").stat().st_size == size
            assert asyncio.run(store.attempts("199")) is not None
            assert asyncio.run(store.attempts("0")) is None
        finally:
            store.close()

    def test_reset_forgets_a_key_and_says_whether_it_was_there(
        self, store: local.LocalStore
    ) -> None:
        """A DELETE of an unknown key is False; of a known one True, and it starts from 1."""
        assert asyncio.run(store.reset("k")) is False
        store.attempt_now(keyed())
        assert asyncio.run(store.reset("k")) is True
        assert store.attempt_now(keyed()).attempt == 1

    def test_a_bucket_lets_through_its_burst_then_its_rate(
        self, store: local.LocalStore, clock: Clock
    ) -> None:
        """rate=2/m, burst=3: three at once, then one every 30 s."""
        limit = Limit(2, 60, 3)
        statuses = [store.attempt_now(keyed(limit=limit)).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        clock.advance(29)
        assert store.attempt_now(keyed(limit=limit)).status == 429
        clock.advance(1.1)
        assert store.attempt_now(keyed(limit=limit)).status == 200

    def test_a_user_bucket_is_not_an_attempt(self, store: local.LocalStore) -> None:
        """Without a key: no number, no log."""
        ask = Ask("u:alice", keyed=False, ttl=60, fail=0, fail_every=0, fail_status=503,
                  pass_status=200, limit=Limit(1, 60, 1))  # fmt: skip
        assert store.attempt_now(ask).attempt == 0
        assert store.attempt_now(ask).status == 429
        assert asyncio.run(store.attempts("alice")) is None

    def test_a_lock_held_too_long_is_unavailable_not_a_hang(
        self, store: local.LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Another holder of the lock past LOCK_WAIT: the attempt gives up, and says why."""
        monkeypatch.setattr(local, "LOCK_WAIT", 0.05)
        fd = os.open(tmp_path / "state.lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with pytest.raises(StateUnavailable, match=r"locked for more than 0\.05 s"):
                store.attempt_now(keyed())
        finally:
            os.close(fd)
        assert store.attempt_now(keyed()).attempt == 1

    def test_every_byte_is_allocated_at_creation(self, tmp_path: Path) -> None:
        """The file and its journal take their room at once: blocks for every byte."""
        local.create(tmp_path / "state", SMALL)
        for path in local.files(tmp_path / "state")[:2]:
            stat = path.stat()
            assert stat.st_blocks * 512 >= stat.st_size > 0, path

    def test_the_database_is_never_mapped(self, store: local.LocalStore) -> None:
        """mmap_size 0: a full file system is an error SQLite reports, never a SIGBUS."""
        [(size,)] = store._loop_db.connection.execute("PRAGMA mmap_size").fetchall()
        assert size == 0

    def test_an_existing_file_is_not_overwritten(self, tmp_path: Path) -> None:
        """Made once, by the instance: a second creation fails."""
        local.create(tmp_path / "state", SMALL)
        with pytest.raises(FileExistsError):
            local.create(tmp_path / "state", SMALL)

    def test_a_broken_file_is_unavailable(self, tmp_path: Path) -> None:
        """A file that is not the state: the attempt is a StateUnavailable, not a crash."""
        local.create(tmp_path / "state", SMALL)
        store = local.LocalStore(tmp_path / "state")
        try:
            with sqlite3.connect(tmp_path / "state") as other:
                other.execute("DROP TABLE attempts")
            with pytest.raises(StateUnavailable, match="the state file failed"):
                store.attempt_now(keyed())
        finally:
            store.close()
