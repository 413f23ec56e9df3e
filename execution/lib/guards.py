"""Redis guards: the per-conversation lock and short-lived idempotency claims.

Every Redis key prefix the project uses is a constant here, `kind:scope:id`.
Redis only coordinates; PostgreSQL UNIQUE constraints remain the durable guard.
"""

from __future__ import annotations

import secrets
import threading
import time
from contextlib import contextmanager
from types import TracebackType
from typing import Iterator

import redis as redis_lib

from execution.lib import cpu_gate
from execution.lib.errors import LockBusy

LOCK_CONVERSATION = "lock:conversation:"
IDEMPOTENCY = "idem:"
PACE_CHANNEL = "pace:channel:"
LOGIN_ATTEMPTS = "ratelimit:login:"

# Compare-and-delete / compare-and-extend: only the holder's token may touch the key.
_RELEASE_LUA = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_EXTEND_LUA = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)

# Reserve the next send slot of a channel: returns how many ms the caller waits for it.
_PACE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, nxt)
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], slot + interval, 'PX', slot - now + interval + 60000)
return slot - now
"""


# Take the channel's next send slot only if it is at most ARGV[2] ms away: returns the wait (>= 0), or
# minus the wait when it is further (nothing taken: the caller schedules the send for then).
_TAKE_SLOT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local wait = math.max(0, nxt - now)
if wait > tonumber(ARGV[2]) then return -wait end
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], now + wait + interval, 'PX', wait + interval + 60000)
return wait
"""

# The send actually left now: the next may not leave before now + interval (a late send pushes it).
_SENT_NOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local interval = tonumber(ARGV[1])
if now + interval > nxt then redis.call('SET', KEYS[1], now + interval, 'PX', interval + 60000) end
return 0
"""


# Count one more failure; the window (a TTL) starts at the first one and is never extended.
_COUNT_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisLock:
    """A lock with a random token, a TTL, and a short bounded wait before `LockBusy`."""

    def __init__(
        self,
        client: redis_lib.Redis,
        key: str,
        *,
        ttl_ms: int = 30_000,
        wait_ms: int = 2_000,
        poll_ms: int = 10,
    ) -> None:
        if ttl_ms <= 0 or wait_ms < 0:
            raise ValueError("ttl_ms must be positive and wait_ms not negative")
        self.client = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.wait_ms = wait_ms
        self.poll_ms = poll_ms
        self.token: str | None = None

    def acquire(self) -> "RedisLock":
        token = secrets.token_hex(16)
        deadline = time.monotonic() + self.wait_ms / 1000
        delay = self.poll_ms / 1000
        while True:
            if self.client.set(self.key, token, nx=True, px=self.ttl_ms):
                self.token = token
                return self
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockBusy(f"{self.key} is held by another worker")
            with cpu_gate.waiting():      # a reply thread waiting here lets another one work
                time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.2)

    def release(self) -> bool:
        """Delete the key only if it still holds our token; False means the TTL expired first."""
        if self.token is None:
            return False
        released = bool(self.client.eval(_RELEASE_LUA, 1, self.key, self.token))
        self.token = None
        return released

    def extend(self, ttl_ms: int | None = None) -> bool:
        if self.token is None:
            return False
        return bool(self.client.eval(_EXTEND_LUA, 1, self.key, self.token, ttl_ms or self.ttl_ms))

    @contextmanager
    def kept_alive(self, every_s: float | None = None) -> Iterator["RedisLock"]:
        """Renew the TTL every `every_s` (a third of it by default) while the block runs.

        A slow step (a model call) then never outlives the lock, while a holder that dies still
        lets the lock expire one TTL later.
        """
        stop = threading.Event()
        interval = every_s if every_s is not None else self.ttl_ms / 3000

        def renew() -> None:
            while not stop.wait(interval):
                try:
                    if not self.extend():
                        return          # lost it (expired or released): nothing left to keep
                except redis_lib.RedisError:
                    continue            # Redis blinked; the next round tries again

        keeper = threading.Thread(target=renew, name=f"keep-{self.key}", daemon=True)
        keeper.start()
        try:
            yield self
        finally:
            stop.set()

    def __enter__(self) -> "RedisLock":
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def conversation_lock(
    client: redis_lib.Redis, conversation_id: int, *, ttl_ms: int = 30_000, wait_ms: int = 2_000
) -> RedisLock:
    """The one-writer-per-conversation lock (`lock:conversation:{id}`)."""
    return RedisLock(client, f"{LOCK_CONVERSATION}{int(conversation_id)}", ttl_ms=ttl_ms, wait_ms=wait_ms)


def claim_idempotency(client: redis_lib.Redis, key: str, *, ttl_s: int) -> bool:
    """Claim `key` once for `ttl_s` seconds; True only for the first caller."""
    if not key:
        raise ValueError("idempotency key must not be empty")
    return bool(client.set(f"{IDEMPOTENCY}{key}", "1", nx=True, ex=ttl_s))


def release_idempotency(client: redis_lib.Redis, key: str) -> None:
    """Give a claim back after the guarded work failed, so a retry may run it."""
    client.delete(f"{IDEMPOTENCY}{key}")


def reserve_send_slot(client: redis_lib.Redis, channel_id: int, *, interval_ms: int) -> int:
    """Reserve this channel's next send slot (one per `interval_ms`, across processes); ms to wait."""
    if interval_ms <= 0:
        return 0
    return int(client.eval(_PACE_LUA, 1, f"{PACE_CHANNEL}{int(channel_id)}", int(interval_ms)))


def take_send_slot(client: redis_lib.Redis, channel_id: int, *, interval_ms: int, max_wait_ms: int) -> int:
    """Take this channel's next send slot if it is at most `max_wait_ms` away: the ms to wait, or minus
    the ms until it when further (nothing taken: schedule the send for then instead of waiting)."""
    if interval_ms <= 0:
        return 0
    return int(client.eval(_TAKE_SLOT_LUA, 1, f"{PACE_CHANNEL}{int(channel_id)}", int(interval_ms), int(max_wait_ms)))


def mark_sent_now(client: redis_lib.Redis, channel_id: int, *, interval_ms: int) -> None:
    """The send left now: the channel's next may not leave before one interval from now."""
    if interval_ms > 0:
        client.eval(_SENT_NOW_LUA, 1, f"{PACE_CHANNEL}{int(channel_id)}", int(interval_ms))


def failures(client: redis_lib.Redis, scope: str) -> tuple[int, int]:
    """Failed attempts counted under `scope` in the current window, and the seconds the window has left."""
    key = f"{LOGIN_ATTEMPTS}{scope}"
    pipe = client.pipeline()
    pipe.get(key)
    pipe.ttl(key)
    count, ttl = pipe.execute()
    return int(count or 0), max(int(ttl or 0), 0)


def count_failure(client: redis_lib.Redis, scope: str, *, window_s: int) -> int:
    """One more failed attempt under `scope`; the window starts at the first failure."""
    return int(client.eval(_COUNT_LUA, 1, f"{LOGIN_ATTEMPTS}{scope}", int(window_s)))


def clear_failures(client: redis_lib.Redis, scope: str) -> None:
    client.delete(f"{LOGIN_ATTEMPTS}{scope}")
