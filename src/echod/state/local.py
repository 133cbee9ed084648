"""Local: the state in the runtime directory, one SQLite file shared by the instance's processes.

Why SQLite (the standard library's ``sqlite3``) rather than a table of our own in a
mapped file: an attempt changes several things at once (the key's count, its log, its
bucket, and maybe another key evicted to make room), and SQLite's transactions make
that one step that a killed process leaves either done or undone: its rollback journal
puts back the pages of a step that was cut short before any other process reads them.
A table of our own would need its own journal to be as safe.

- **Exact across processes.** Every operation takes an exclusive ``flock`` on
  ``state.lock``, then runs one ``BEGIN IMMEDIATE`` transaction: the processes take
  turns, so two workers never count the same attempt or spend the same token. A lock
  is held for one transaction, tens of microseconds; waiting for it is bounded
  (:data:`LOCK_WAIT`), past which the request gets 503.
- **Crash-safe.** A process killed during a transaction loses its ``flock`` with its
  life, and the next transaction rolls the cut step back from the journal. What was
  committed stays: a killed worker loses no count.
- **Reserved space, never a SIGBUS.** :func:`create` writes the whole file at start,
  :data:`STATE_BYTES`, and the journal, :data:`JOURNAL_BYTES`, and allocates both with
  ``posix_fallocate``: a full /dev/shm is an error at start. The database then never
  grows past its pages (``max_page_count``), and it is read and written with
  ``read``/``write``, never mapped (``mmap_size`` 0), so a full filesystem is an error
  SQLite reports, not a signal. When the pages run out, the least recently used key is
  evicted (counted as ``space``) and the step tried again.
- **Fast.** An attempt is a few statements in memory (/dev/shm), made on the event
  loop: about 50 microseconds with the lock. Reading a whole log (up to 1,000 entries)
  or removing a key takes longer, so those run on a thread of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import fcntl
import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from echod.state.model import (
    MAX_ATTEMPTS,
    MAX_KEYS,
    Entry,
    Log,
    StateUnavailable,
    decide,
    refill,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from echod.state.model import Ask, Outcome

__all__ = [
    "JOURNAL_BYTES",
    "LOCK_WAIT",
    "STATE_BYTES",
    "LocalStore",
    "create",
    "files",
]

#: The bytes of the state file, allocated at start: about 50,000 entries of a typical size.
STATE_BYTES = 16 * 1024 * 1024
#: The bytes of its rollback journal, allocated at start: the pages of the largest step
#: (a key of 1,000 entries removed) fit in it.
JOURNAL_BYTES = 2 * 1024 * 1024
#: Seconds a process waits at most for another's transaction before it gives up (503).
LOCK_WAIT = 1.0
_T = TypeVar("_T")
_PAGE = 4096
_MICROS = 1_000_000
# SQLite's result code for a database whose pages ran out (SQLITE_FULL).
_FULL = 13
# Tries of one attempt that finds the pages run out: each evicts the oldest key first.
_FULL_TRIES = 8
# Keys whose ttl passed that one attempt removes on its way.
_EXPIRED_PER_STEP = 4
_SCHEMA = """
CREATE TABLE keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    attempts INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0,
    last_us INTEGER,
    used_us INTEGER NOT NULL,
    expires_us INTEGER NOT NULL,
    tokens REAL,
    filled_us INTEGER
);
CREATE INDEX keys_by_use ON keys (used_us);
CREATE INDEX keys_by_expiry ON keys (expires_us);
CREATE TABLE attempts (
    key_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    time_us INTEGER NOT NULL,
    status INTEGER NOT NULL,
    since_us INTEGER,
    info BLOB NOT NULL,
    PRIMARY KEY (key_id, n)
) WITHOUT ROWID;
CREATE TABLE reserve (filler BLOB);
"""


def files(path: Path) -> tuple[Path, Path, Path]:
    """The files of the state at ``path``: the database, its journal and its lock."""
    return path, path.with_name(path.name + "-journal"), path.with_name(path.name + ".lock")


def create(path: Path, size: int = STATE_BYTES) -> None:
    """Make the state at ``path``: ``size`` bytes of empty pages, its journal, its lock.

    Every byte is written and allocated now.

    Raises:
        OSError: a file exists already, or there is no room (``ENOSPC``).
    """
    database, journal, lock = files(path)
    fd = os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute(f"PRAGMA page_size = {_PAGE}")
        connection.execute("PRAGMA journal_mode = OFF")  # no one else has it yet
        connection.executescript(_SCHEMA)
        used = connection.execute("PRAGMA page_count").fetchone()[0] * _PAGE
        # Fill the file to its size, then free the pages: they stay in the file, on
        # SQLite's list of free pages, for the keys and entries to come.
        connection.execute("INSERT INTO reserve VALUES (zeroblob(?))", (max(0, size - used),))
        connection.execute("DELETE FROM reserve")
    except sqlite3.OperationalError as error:
        raise OSError(errno.ENOSPC, str(error)) from None
    finally:
        connection.close()
    _allocate(database, database.stat().st_size)
    _allocate(journal, JOURNAL_BYTES)
    _allocate(lock, 0)


def _allocate(path: Path, size: int) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if size:
            os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)


def _clock() -> tuple[int, int]:
    """Unix time, and the machine's monotonic clock, in microseconds.

    The monotonic clock is the same in every process of the machine: buckets and ttls
    run on it, so that a step of the wall clock moves neither. Entries carry Unix time.
    """
    return time.time_ns() // 1000, time.monotonic_ns() // 1000


class _Database:
    """One connection to the state, and the lock every process takes around a transaction."""

    def __init__(self, path: Path, max_pages: int) -> None:
        database, _, lock = files(path)
        self._lock = os.open(lock, os.O_RDWR)
        self.connection = sqlite3.connect(
            database, isolation_level=None, timeout=LOCK_WAIT, check_same_thread=False
        )
        for pragma in (
            "journal_mode = PERSIST",  # the journal keeps the space it was given
            "synchronous = OFF",  # /dev/shm: a process that dies leaves its writes behind
            "mmap_size = 0",  # read and written, never mapped: no SIGBUS
            "temp_store = MEMORY",
            f"max_page_count = {max_pages}",
            "cache_size = -2048",
        ):
            self.connection.execute(f"PRAGMA {pragma}").fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one write transaction; commit it, or roll it back on error.

        Raises:
            StateUnavailable: another process held the lock for :data:`LOCK_WAIT`.
        """
        deadline = time.monotonic() + LOCK_WAIT
        pause = 0.00002
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StateUnavailable(
                        f"the state file was locked for more than {LOCK_WAIT:g} s"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
        try:
            connection = self.connection
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                if connection.in_transaction:  # SQLite may have rolled it back itself
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def close(self) -> None:
        self.connection.close()
        os.close(self._lock)


def _drop_key(connection: sqlite3.Connection, key_id: int) -> None:
    connection.execute("DELETE FROM attempts WHERE key_id = ?", (key_id,))
    connection.execute("DELETE FROM keys WHERE id = ?", (key_id,))


def _evict_oldest(connection: sqlite3.Connection, keep: str) -> bool:
    """Evict the least recently used key other than ``keep``; whether there was one."""
    row = connection.execute(
        "SELECT id FROM keys WHERE name != ? ORDER BY used_us LIMIT 1", (keep,)
    ).fetchone()
    if row is None:
        return False
    _drop_key(connection, row[0])
    return True


class LocalStore:
    """The state in the runtime directory (see the module), for one process.

    Attempts are made on the calling thread (the event loop); reads and resets on a
    thread of the store's own, with a connection of its own.
    """

    def __init__(self, path: Path, clock: Callable[[], tuple[int, int]] = _clock) -> None:
        """Open the state :func:`create` made at ``path``."""
        self.name = "the runtime directory"
        max_pages = path.stat().st_size // _PAGE
        self._loop_db = _Database(path, max_pages)
        self._thread_db = _Database(path, max_pages)
        self._clock = clock
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="echod-state")
        self._closing = threading.Event()

    async def attempt(self, ask: Ask) -> Outcome:
        """Count, log and decide one request, in one transaction (see :class:`Store`)."""
        return self.attempt_now(ask)

    def attempt_now(self, ask: Ask) -> Outcome:
        """:meth:`attempt`, on this thread.

        Raises:
            StateUnavailable: the lock could not be had, or the file failed.
        """
        evicted = 0
        for _ in range(_FULL_TRIES):
            try:
                with self._loop_db.transaction() as connection:
                    outcome = self._step(connection, ask)
            except sqlite3.OperationalError as error:
                if getattr(error, "sqlite_errorcode", None) != _FULL:
                    raise StateUnavailable(f"the state file failed: {error}") from None
                with self._loop_db.transaction() as connection:
                    if not _evict_oldest(connection, ask.name):
                        raise StateUnavailable("the state file is full") from None
                evicted += 1
                continue
            except sqlite3.Error as error:
                raise StateUnavailable(f"the state file failed: {error}") from None
            return dataclasses.replace(outcome, evicted_for_space=evicted) if evicted else outcome
        raise StateUnavailable("the state file is full")

    def _step(self, connection: sqlite3.Connection, ask: Ask) -> Outcome:
        wall, now = self._clock()
        for (expired,) in connection.execute(
            "SELECT id FROM keys WHERE expires_us < ? LIMIT ?", (now, _EXPIRED_PER_STEP)
        ).fetchall():
            _drop_key(connection, expired)
        row = connection.execute(
            "SELECT id, attempts, dropped, last_us, tokens, filled_us FROM keys WHERE name = ?",
            (ask.name,),
        ).fetchone()
        evicted = 0
        if row is None:
            (live,) = connection.execute("SELECT COUNT(*) FROM keys").fetchone()
            while live >= MAX_KEYS and _evict_oldest(connection, ask.name):
                evicted += 1
                live -= 1
            key_id = connection.execute(
                "INSERT INTO keys (name, used_us, expires_us) VALUES (?, ?, ?)",
                (ask.name, now, now),
            ).lastrowid
            attempts = dropped = 0
            last_us = filled_us = None
            tokens: float | None = None
        else:
            key_id, attempts, dropped, last_us, tokens, filled_us = row
        held = None if ask.limit is None else refill(tokens, filled_us, now, ask.limit)
        number = attempts + 1 if ask.keyed else 0
        outcome, left = decide(ask, number, held)
        expires = now + ask.ttl * _MICROS
        if ask.keyed:
            since = None if last_us is None else max(0, wall - last_us)
            connection.execute(
                "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, number, wall, outcome.status, since, ask.info),
            )
            if number - dropped > MAX_ATTEMPTS:
                dropped += 1
                connection.execute(
                    "DELETE FROM attempts WHERE key_id = ? AND n = ?", (key_id, dropped)
                )
            last_us = wall
        connection.execute(
            "UPDATE keys SET attempts = ?, dropped = ?, last_us = ?, used_us = ?, "
            "expires_us = ?, tokens = ?, filled_us = ? WHERE id = ?",
            (
                number if ask.keyed else attempts,
                dropped,
                last_us,
                now,
                expires,
                left,
                None if ask.limit is None else now,
                key_id,
            ),
        )
        return dataclasses.replace(outcome, evicted_for_keys=evicted) if evicted else outcome

    async def attempts(self, key: str) -> Log | None:
        """The log of ``key`` (see :class:`Store`), read on the store's thread."""
        return await self._on_thread(self._read, key)

    async def reset(self, key: str) -> bool:
        """Forget ``key`` (see :class:`Store`), on the store's thread."""
        return await self._on_thread(self._reset, key)

    def _read(self, key: str) -> Log | None:
        _, now = self._clock()
        with self._thread_db.transaction() as connection:
            row = connection.execute(
                "SELECT id, dropped, expires_us FROM keys WHERE name = ?", (f"k:{key}",)
            ).fetchone()
            if row is None or row[2] < now:
                return None
            rows = connection.execute(
                "SELECT n, time_us, status, since_us, info FROM attempts WHERE key_id = ? "
                "ORDER BY n",
                (row[0],),
            ).fetchall()
        return Log([Entry(*entry) for entry in rows], row[1])

    def _reset(self, key: str) -> bool:
        _, now = self._clock()
        with self._thread_db.transaction() as connection:
            row = connection.execute(
                "SELECT id, expires_us FROM keys WHERE name = ?", (f"k:{key}",)
            ).fetchone()
            if row is None:
                return False
            _drop_key(connection, row[0])
            return bool(row[1] >= now)

    async def _on_thread(self, step: Callable[[str], _T], key: str) -> _T:
        if self._closing.is_set():
            raise StateUnavailable("echod is stopping")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, step, key)
        except sqlite3.Error as error:
            raise StateUnavailable(f"the state file failed: {error}") from None

    def close(self) -> None:
        """Close the connections, once the thread has finished what it was given."""
        self._closing.set()
        self._thread.shutdown(wait=True, cancel_futures=True)
        self._loop_db.close()
        self._thread_db.close()
