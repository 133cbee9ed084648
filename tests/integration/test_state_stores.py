"""The two stores of the state side by side: the runtime directory's and a real Redis.

Each behaviour is checked on both, so that a scenario answers the same whichever store
keeps it. Then what only one of them has: a process killed in the middle of a
transaction of the runtime directory's store, and Redis going away and coming back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import os
import signal
import time
from typing import TYPE_CHECKING

import pytest

from echod.settings.values import state_url
from echod.state import local, remote
from echod.state.model import Ask, Limit, StateUnavailable
from tests.support.redis import RedisServer
from tests.support.waiting import eventually_async

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from echod.state.model import Store

PREFIX = "echod-test:"
STORES = ["runtime-directory", "redis"]


def keyed(key: str = "k", **fields: object) -> Ask:
    """An attempt under ``key``: 503 when its rule fails it, 200 otherwise."""
    ask = Ask(
        f"k:{key}",
        keyed=True,
        ttl=600,
        fail=0,
        fail_every=0,
        fail_status=503,
        pass_status=200,
        limit=None,
        info=b'{"pid":1}',
    )
    return dataclasses.replace(ask, **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the module."""
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture(params=STORES)
def kind(request: pytest.FixtureRequest) -> str:
    """Which store a test runs on."""
    return str(request.param)


@pytest.fixture
def make_store(
    kind: str, tmp_path: Path, redis_server: RedisServer
) -> contextlib.AbstractAsyncContextManager[Store]:
    """A store of ``kind``, empty, opened and closed around the test's loop."""

    @contextlib.asynccontextmanager
    async def made() -> AsyncIterator[Store]:
        store: Store
        if kind == "redis":
            redis_server.command("FLUSHALL")
            store = remote.RemoteStore(state_url(redis_server.url), PREFIX, None)
        else:
            local.create(tmp_path / "state", 1024 * 1024)
            store = local.LocalStore(tmp_path / "state")
        try:
            yield store
        finally:
            store.close()

    return made()


def test_attempts_are_numbered_failed_and_logged(
    make_store: contextlib.AbstractAsyncContextManager[Store],
) -> None:
    """fail=2 on one key, fail_every=2 on another: the same answers and logs on both."""

    async def main() -> None:
        async with make_store as store:
            first = [(await store.attempt(keyed(fail=2))).status for _ in range(3)]
            every = [(await store.attempt(keyed("e", fail_every=2))).status for _ in range(4)]
            log = await store.attempts("k")
        assert first == [503, 503, 200]
        assert every == [200, 503, 200, 503]
        assert log is not None
        assert [(e.attempt, e.status) for e in log.entries] == [(1, 503), (2, 503), (3, 200)]
        assert log.entries[0].since_us is None
        since = log.entries[1].since_us
        assert since is not None
        assert 0 <= since < 5_000_000

    asyncio.run(main())


def test_concurrent_attempts_get_every_number_once(
    make_store: contextlib.AbstractAsyncContextManager[Store],
) -> None:
    """200 attempts at once on one key: the numbers 1 to 200, each once."""

    async def main() -> list[int]:
        async with make_store as store:
            outcomes = await asyncio.gather(*(store.attempt(keyed()) for _ in range(200)))
        return sorted(outcome.attempt for outcome in outcomes)

    assert asyncio.run(main()) == list(range(1, 201))


def test_a_key_is_forgotten_after_its_ttl(
    make_store: contextlib.AbstractAsyncContextManager[Store],
) -> None:
    """ttl=1: a second later the key counts from 1 again and its log is gone."""

    async def main() -> None:
        async with make_store as store:
            assert (await store.attempt(keyed(ttl=1))).attempt == 1
            assert (await store.attempt(keyed(ttl=1))).attempt == 2
            await asyncio.sleep(1.2)
            assert await store.attempts("k") is None
            assert (await store.attempt(keyed(ttl=1))).attempt == 1

    asyncio.run(main())


def test_the_log_keeps_its_last_entries_and_counts_the_dropped(
    make_store: contextlib.AbstractAsyncContextManager[Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bound of 5 (1,000 in service): eight attempts keep 4 to 8, and say 3 dropped."""
    monkeypatch.setattr(local, "MAX_ATTEMPTS", 5)
    monkeypatch.setattr(remote, "MAX_ATTEMPTS", 5)

    async def main() -> None:
        async with make_store as store:
            for _ in range(8):
                await store.attempt(keyed())
            log = await store.attempts("k")
        assert log is not None
        assert ([e.attempt for e in log.entries], log.dropped) == ([4, 5, 6, 7, 8], 3)

    asyncio.run(main())


def test_past_the_live_keys_the_least_recently_used_is_evicted(
    make_store: contextlib.AbstractAsyncContextManager[Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bound of 3 keys (10,000 in service): a fourth evicts the oldest, once."""
    monkeypatch.setattr(local, "MAX_KEYS", 3)
    monkeypatch.setattr(remote, "MAX_KEYS", 3)

    async def main() -> None:
        async with make_store as store:
            for key in ("a", "b", "c"):
                assert (await store.attempt(keyed(key))).evicted_for_keys == 0
                await asyncio.sleep(0.002)
            await store.attempt(keyed("a"))
            assert (await store.attempt(keyed("d"))).evicted_for_keys == 1
            assert await store.attempts("b") is None
            assert await store.attempts("a") is not None
            assert (await store.attempt(keyed("d"))).evicted_for_keys == 0

    asyncio.run(main())


def test_reset_forgets_a_key_and_says_whether_it_was_there(
    make_store: contextlib.AbstractAsyncContextManager[Store],
) -> None:
    """Unknown: False; known: True, and the key counts from 1 again."""

    async def main() -> None:
        async with make_store as store:
            assert await store.reset("k") is False
            await store.attempt(keyed())
            assert await store.reset("k") is True
            assert await store.attempts("k") is None
            assert (await store.attempt(keyed())).attempt == 1

    asyncio.run(main())


def test_a_bucket_passes_its_burst_then_refuses(
    make_store: contextlib.AbstractAsyncContextManager[Store],
) -> None:
    """rate=1/h, burst=3: three pass, the rest are 429 and keep their place in the log."""

    async def main() -> None:
        async with make_store as store:
            limit = Limit(1, 3600, 3)
            outcomes = [await store.attempt(keyed(limit=limit)) for _ in range(5)]
            user = Ask("u:alice", keyed=False, ttl=60, fail=0, fail_every=0, fail_status=503,
                       pass_status=200, limit=Limit(1, 3600, 1))  # fmt: skip
            users = [await store.attempt(user) for _ in range(2)]
        assert [o.status for o in outcomes] == [200, 200, 200, 429, 429]
        assert [o.remaining() for o in outcomes] == [2, 1, 0, 0, 0]
        assert outcomes[-1].next_token(limit) in {3599, 3600}
        assert [(o.attempt, o.status) for o in users] == [(0, 200), (0, 429)]

    asyncio.run(main())


def test_redis_keys_carry_the_prefix_and_the_ttl(redis_server: RedisServer) -> None:
    """Every key echod writes starts with --state-prefix and expires."""
    redis_server.command("FLUSHALL")

    async def main() -> None:
        store = remote.RemoteStore(state_url(redis_server.url), PREFIX, None)
        try:
            await store.attempt(keyed(ttl=30))
        finally:
            store.close()

    asyncio.run(main())
    assert redis_server.command("EXISTS", f"{PREFIX}k:k") == b":1"
    assert redis_server.command("EXISTS", f"{PREFIX}l:k") == b":1"
    assert redis_server.command("EXISTS", "k:k") == b":0"
    ttl = int(redis_server.command("PTTL", f"{PREFIX}k:k")[1:])
    assert 25_000 < ttl <= 30_000


def test_redis_down_is_unavailable_at_once_and_back_with_backoff() -> None:
    """Refused: the first request says why; the next ones too, without a wait; then back."""
    server = RedisServer()

    async def main() -> None:
        store = remote.RemoteStore(state_url(server.url), PREFIX, None)
        try:
            with pytest.raises(StateUnavailable, match="cannot be used: ConnectionError"):
                await store.attempt(keyed())
            started = time.monotonic()
            with pytest.raises(StateUnavailable):
                await store.attempts("k")
            assert time.monotonic() - started < 0.05  # no network: it is known to be down
            server.start()
            await eventually_async(
                lambda: store.down is None, timeout=10, failure="the store stayed down"
            )
            assert (await store.attempt(keyed())).attempt == 1
        finally:
            store.close()

    try:
        asyncio.run(main())
    finally:
        server.close()


def _die_in_a_transaction(path: str, ready: multiprocessing.synchronize.Event) -> None:
    """Open the store, count one attempt, then start another and be killed inside it."""
    from pathlib import Path  # noqa: PLC0415 - the child's own imports

    store = local.LocalStore(Path(path))
    store.attempt_now(keyed())
    with store._loop_db.transaction() as connection:
        connection.execute("UPDATE keys SET attempts = 99")
        connection.execute("DELETE FROM attempts")
        ready.set()
        time.sleep(60)  # killed here, holding the lock, with half a step written


def test_a_process_killed_in_a_transaction_loses_no_count(tmp_path: Path) -> None:
    """SIGKILL in the middle of a step: the lock goes with it, and the step is rolled back."""
    local.create(tmp_path / "state", 1024 * 1024)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    child = context.Process(target=_die_in_a_transaction, args=(str(tmp_path / "state"), ready))
    child.start()
    try:
        assert ready.wait(30), "the child did not start its transaction"
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(10)
    finally:
        if child.is_alive():
            child.kill()
    store = local.LocalStore(tmp_path / "state")
    try:
        assert store.attempt_now(keyed()).attempt == 2
        log = asyncio.run(store.attempts("k"))
        assert log is not None
        assert [e.attempt for e in log.entries] == [1, 2]
    finally:
        store.close()
