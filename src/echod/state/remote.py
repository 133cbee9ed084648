"""Remote: the state in Redis or Valkey, shared by every replica behind a load balancer.

Each operation is one Lua script, run whole by the server (one round trip, atomic):
an attempt reads the key, counts it, logs it, takes a token and evicts the least
recently used key when there are :data:`echod.state.model.MAX_KEYS`, all at once, so
replicas never count the same attempt twice. The server's clock (``TIME``) times every
attempt and bucket, so that replicas on machines whose clocks differ agree. Keys start
with ``--state-prefix``::

    <prefix>k:<key>     hash: attempts, dropped, last (the key's), tokens, filled (its bucket)
    <prefix>l:<key>     list: the key's log, one JSON array per attempt, oldest first
    <prefix>u:<user>    hash: tokens, filled (the bucket of a user, for a rate without a key)
    <prefix>lru         sorted set: every key and user bucket, by last use
    <prefix>expiry      sorted set: the same, by when its ttl ends

Keys and logs expire with their ttl (``PEXPIRE``). The scripts name keys besides those
they are given (to evict), so a standalone server (or a primary) is needed, not a
Cluster.

The client is redis-py's asyncio client, imported only when ``--state`` names a server,
and run on an event loop of its own thread: the serving loop cannot make TLS
connections (``rediss://``), and it never waits on the network here. Each operation has
:data:`TIMEOUT` seconds. When one fails, the store is down: every request that needs
it gets a 503 at once, without waiting, while a task tries the server again after 0.1
s, then twice as long each time, up to :data:`MAX_BACKOFF`; the first answer puts it
back in service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any

import msgspec

from echod.state.model import MAX_ATTEMPTS, MAX_KEYS, Entry, Log, Outcome, StateUnavailable

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from echod.settings.values import StateUrl
    from echod.state.model import Ask

__all__ = ["MAX_BACKOFF", "TIMEOUT", "RemoteStore"]

log = logging.getLogger("echod")

#: Seconds one operation may take, connecting included, before it counts as a failure.
TIMEOUT = 1.0
#: The longest wait between two tries of a server that is down, in seconds.
MAX_BACKOFF = 5.0
_FIRST_BACKOFF = 0.1
#: Connections to the server per process; more requests at once wait for one.
MAX_CONNECTIONS = 64

_ATTEMPT = """
local hash, log, lru, expiry = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, name = ARGV[1], ARGV[2]
local keyed = ARGV[3] == '1'
local ttl = tonumber(ARGV[4])
local fail, every = tonumber(ARGV[5]), tonumber(ARGV[6])
local fail_status, pass_status = tonumber(ARGV[7]), tonumber(ARGV[8])
local count, window, burst = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local info = ARGV[12]
local max_attempts, max_keys = tonumber(ARGV[13]), tonumber(ARGV[14])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local function int(x) return string.format('%d', x) end
local function forget(member)
  redis.call('ZREM', lru, member)
  redis.call('ZREM', expiry, member)
  redis.call('DEL', prefix .. member)
  if string.sub(member, 1, 2) == 'k:' then
    redis.call('DEL', prefix .. 'l:' .. string.sub(member, 3))
  end
end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', expiry, '-inf', int(now), 'LIMIT', 0, 16)) do
  forget(member)
end
local evicted = 0
if redis.call('EXISTS', hash) == 0 then
  while redis.call('ZCARD', lru) >= max_keys do
    forget(redis.call('ZRANGE', lru, 0, 0)[1])
    evicted = evicted + 1
  end
end
local state = redis.call('HMGET', hash, 'attempts', 'dropped', 'last', 'tokens', 'filled')
local attempts = tonumber(state[1]) or 0
local dropped = tonumber(state[2]) or 0
local tokens = nil
local allowed = true
if count > 0 then
  local held, filled = tonumber(state[4]), tonumber(state[5])
  if held == nil or filled == nil then
    tokens = burst
  else
    tokens = math.min(burst, held + math.max(0, now - filled) * count / (window * 1000000))
  end
  if tokens < 1 then allowed = false else tokens = tokens - 1 end
end
local n = 0
if keyed then n = attempts + 1 end
local status, failed = pass_status, 0
if not allowed then
  status = 429
elseif keyed and ((fail > 0 and n <= fail) or (every > 0 and n % every == 0)) then
  status, failed = fail_status, 1
end
if keyed then
  local since = 'null'
  if state[3] then since = int(math.max(0, now - tonumber(state[3]))) end
  redis.call('RPUSH', log,
    '[' .. int(n) .. ',' .. int(now) .. ',' .. int(status) .. ',' .. since .. ',' .. info .. ']')
  if n - dropped > max_attempts then
    redis.call('LPOP', log)
    dropped = dropped + 1
  end
  redis.call('HSET', hash, 'attempts', int(n), 'dropped', int(dropped), 'last', int(now))
  redis.call('PEXPIRE', log, int(ttl * 1000))
end
local left = '0'
if tokens ~= nil then
  left = string.format('%.17g', tokens)
  redis.call('HSET', hash, 'tokens', left, 'filled', int(now))
end
redis.call('PEXPIRE', hash, int(ttl * 1000))
redis.call('ZADD', lru, int(now), name)
redis.call('ZADD', expiry, int(now + ttl * 1000000), name)
local allowed_flag = 0
if allowed then allowed_flag = 1 end
return {n, status, failed, allowed_flag, left, evicted}
"""

_READ = """
local dropped = redis.call('HGET', KEYS[1], 'dropped')
if not dropped then return false end
return {dropped, redis.call('LRANGE', KEYS[2], 0, -1)}
"""

_RESET = """
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local existed = redis.call('EXISTS', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return existed
"""

_decode_entry = msgspec.json.Decoder(tuple[int, int, int, int | None, dict[str, Any]]).decode


class RemoteStore:
    """The state in a Redis or Valkey server (see the module), for one process."""

    def __init__(self, url: StateUrl, prefix: str, password: str | None) -> None:
        """Connect to ``url`` (lazily: nothing is sent until a request needs it)."""
        self.name = str(url)
        self._prefix = prefix
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="echod-redis", daemon=True
        )
        self._thread.start()
        self._client, self._scripts = self._on_own_loop(self._connect(url, password)).result()
        #: Why the store is down, or None while it answers.
        self.down: str | None = None
        self._retrying: asyncio.Task[None] | None = None

    async def _connect(self, url: StateUrl, password: str | None) -> tuple[Any, list[Any]]:
        import redis.asyncio  # noqa: PLC0415 - only an instance with --state redis loads it
        from redis.asyncio.retry import Retry  # noqa: PLC0415
        from redis.backoff import NoBackoff  # noqa: PLC0415

        kind = redis.asyncio.SSLConnection if url.tls else redis.asyncio.Connection
        pool = redis.asyncio.BlockingConnectionPool(
            connection_class=kind,
            max_connections=MAX_CONNECTIONS,
            timeout=TIMEOUT,
            host=url.host,
            port=url.port,
            db=url.db,
            username=url.username,
            password=password,
            socket_connect_timeout=TIMEOUT,
            socket_timeout=TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        client = redis.asyncio.Redis(connection_pool=pool)
        scripts = [client.register_script(text) for text in (_ATTEMPT, _READ, _RESET)]
        return client, scripts

    def _on_own_loop(self, work: Coroutine[Any, Any, Any]) -> Any:  # noqa: ANN401 - any result
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    async def _run(self, work: Coroutine[Any, Any, Any]) -> Any:  # noqa: ANN401 - any result
        """Run ``work`` on the client's loop within :data:`TIMEOUT`; a failure puts it down.

        Raises:
            StateUnavailable: the store is down, or the work failed or took too long.
        """
        if self.down is not None:
            work.close()
            raise StateUnavailable(self._unreachable(self.down))
        try:
            return await asyncio.wrap_future(self._on_own_loop(_within(work)))
        except Exception as error:  # noqa: BLE001 - any failure of the client is the store's
            reason = _reason(error)
            self._went_down(reason)
            raise StateUnavailable(self._unreachable(reason)) from None

    def _unreachable(self, reason: str) -> str:
        return f"the state store {self.name} cannot be used: {reason}"

    def _went_down(self, reason: str) -> None:
        if self.down is None:
            log.warning(
                "the state store %s cannot be used (%s): requests with key= or rate= get "
                "503 until it answers again",
                self.name,
                reason,
            )
        self.down = reason
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.get_running_loop().create_task(self._retry())

    async def _retry(self) -> None:
        """Ask the server again after a backoff that doubles, until it answers."""
        backoff = _FIRST_BACKOFF
        while True:
            await asyncio.sleep(backoff)
            try:
                await asyncio.wrap_future(self._on_own_loop(_within(self._client.ping())))
            except Exception as error:  # noqa: BLE001 - still down, whatever the reason
                self.down = _reason(error)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            self.down = None
            log.info("the state store %s answers again", self.name)
            return

    def _names(self, name: str) -> list[str]:
        prefix = self._prefix
        log_name = f"{prefix}l:{name[2:]}" if name.startswith("k:") else f"{prefix}-"
        return [prefix + name, log_name, f"{prefix}lru", f"{prefix}expiry"]

    async def attempt(self, ask: Ask) -> Outcome:
        """Count, log and decide one request, in one script (see the module)."""
        limit = ask.limit
        args = [
            self._prefix,
            ask.name,
            int(ask.keyed),
            ask.ttl,
            ask.fail,
            ask.fail_every,
            ask.fail_status,
            ask.pass_status,
            0 if limit is None else limit.count,
            0 if limit is None else limit.window,
            0 if limit is None else limit.burst,
            ask.info,
            MAX_ATTEMPTS,
            MAX_KEYS,
        ]
        number, status, failed, allowed, left, evicted = await self._run(
            self._scripts[0](keys=self._names(ask.name), args=args)
        )
        return Outcome(
            int(number),
            int(status),
            limited=not allowed,
            failed=bool(failed),
            tokens=float(left),
            evicted_for_keys=int(evicted),
        )

    async def attempts(self, key: str) -> Log | None:
        """The log of ``key``, in one script (see :class:`echod.state.model.Store`)."""
        found = await self._run(self._scripts[1](keys=self._names(f"k:{key}")))
        if found is None:
            return None
        dropped, raw = found
        entries = []
        for item in raw:
            number, time_us, status, since_us, info = _decode_entry(item)
            entries.append(Entry(number, time_us, status, since_us, info))
        return Log(entries, int(dropped))

    async def reset(self, key: str) -> bool:
        """Forget ``key``, in one script (see :class:`echod.state.model.Store`)."""
        name = f"k:{key}"
        return bool(await self._run(self._scripts[2](keys=self._names(name), args=[name])))

    def close(self) -> None:
        """Close the connections and stop the client's loop, within a second or two."""
        if self._retrying is not None:
            self._retrying.cancel()
        with contextlib.suppress(Exception):  # the process stops: a failure to close is moot
            self._on_own_loop(_within(self._client.aclose(close_connection_pool=True))).result(
                timeout=TIMEOUT + 1
            )
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()


async def _within(work: Coroutine[Any, Any, Any]) -> Any:  # noqa: ANN401 - any result
    async with asyncio.timeout(TIMEOUT):
        return await work


def _reason(error: BaseException) -> str:
    """A failure of the client, in a few words: its type, and its message when it has one."""
    if isinstance(error, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    text = str(error).strip()
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__
