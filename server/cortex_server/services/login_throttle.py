"""Login throttling: exponential backoff per username and per client address, and a bound
on password checks in flight.

Without it, 40 wrong passwords followed by the right one logged in, and 40 concurrent login
loops took the daemon to 1 GiB with admin calls delayed to 4 s. Now:

- after `free` failures for a username (or `free_ip` from one address) each further attempt
  must wait base x 2^(extra failures) seconds (capped at `max_s`); an attempt inside the
  wait is answered 429 with Retry-After before any password work; a success clears the
  username's count (never the address's: one good account must not launder an address);
  counts are forgotten `forget_s` after the last failure;
- `LoginGate` lets `slots` logins check passwords at once on the event loop's side (so
  waiting logins hold no worker thread and admin calls stay responsive) and refuses with
  429 when more than `max_waiting` already wait.

The failure counts live in Redis when the daemon has one (shared by every daemon on it, so
an attacker behind a load balancer gets one budget, not one per daemon), else in memory
(a bounded LRU). If Redis is unreachable, the in-memory counts carry on for this daemon.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from cortex_server.core.auth import retry_seconds
from cortexctl.core.errors import RateLimited

log = logging.getLogger(__name__)


class FailureStore(Protocol):
    """Per throttle key: failures so far and when the wait ends (wall-clock seconds)."""

    unreachable: tuple[type[Exception], ...]  # what the store raises while it cannot answer

    async def locked_until(self, key: str) -> float: ...
    async def add_failure(
        self, key: str, *, free: int, base_s: float, max_s: float, forget_s: float
    ) -> None: ...
    async def clear(self, key: str) -> None: ...


def _lock_end(now: float, count: int, *, free: int, base_s: float, max_s: float) -> float:
    return now + min(max_s, base_s * 2 ** (count - free)) if count >= free else 0.0


class MemoryFailures:
    unreachable: tuple[type[Exception], ...] = (OSError,)

    def __init__(self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[int, float, float]] = OrderedDict()  # count, last, until
        self._lock = threading.Lock()

    async def locked_until(self, key: str) -> float:
        with self._lock:
            entry = self._entries.get(key)
            return entry[2] if entry is not None else 0.0

    async def add_failure(self, key: str, *, free: int, base_s: float, max_s: float, forget_s: float) -> None:
        now = self._clock()
        with self._lock:
            count, last, _ = self._entries.get(key, (0, now, 0.0))
            count = 1 if now - last > forget_s else count + 1
            self._entries[key] = (count, now, _lock_end(now, count, free=free, base_s=base_s, max_s=max_s))
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    async def clear(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


class RedisFailures:
    """The same counts in Redis hashes that expire `forget_s` after the last failure."""

    def __init__(self, *, url: str, prefix: str, clock: Callable[[], float] = time.time) -> None:
        # imported here: a daemon without CORTEX_REDIS_URL never loads redis (services/ratelimit.py)
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        self.unreachable: tuple[type[Exception], ...] = (RedisError, OSError)
        self._redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        self._prefix = f"{prefix}login:"
        self._clock = clock

    async def locked_until(self, key: str) -> float:
        value = await self._redis.hget(self._prefix + key, "until")
        return float(value) if value is not None else 0.0

    async def add_failure(self, key: str, *, free: int, base_s: float, max_s: float, forget_s: float) -> None:
        name = self._prefix + key
        count = int(await self._redis.hincrby(name, "count", 1))
        now = self._clock()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(name, "until", repr(_lock_end(now, count, free=free, base_s=base_s, max_s=max_s)))
            pipe.expire(name, max(1, int(forget_s)))
            await pipe.execute()

    async def clear(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def close(self) -> None:
        await self._redis.aclose()


class LoginThrottle:
    def __init__(
        self,
        *,
        store: FailureStore | None = None,
        free: int = 5,
        free_ip: int = 20,
        base_s: float = 1.0,
        max_s: float = 900.0,
        forget_s: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.free, self.free_ip, self.base_s, self.max_s, self.forget_s = (
            free,
            free_ip,
            base_s,
            max_s,
            forget_s,
        )
        self._clock = clock
        self._fallback = MemoryFailures(clock=clock)
        self._store: FailureStore = store or self._fallback

    async def _call(self, what: str, *args: object, **kwargs: object) -> object:
        """Ask the store; on a Redis failure, this daemon's memory answers instead."""
        try:
            return await getattr(self._store, what)(*args, **kwargs)
        except self._store.unreachable as exc:
            log.warning("login throttle store unreachable (%s); counting in memory", type(exc).__name__)
            return await getattr(self._fallback, what)(*args, **kwargs)

    async def check(self, *, username: str, ip: str | None) -> None:
        """Raise 429 if this username or address must still wait."""
        ends = [float(await self._call("locked_until", k)) for k in ("u:" + username, f"ip:{ip}")]  # type: ignore[arg-type]
        wait = max(ends) - self._clock()
        if wait > 0:
            seconds = retry_seconds(wait)
            raise RateLimited(
                f"Too many failed logins for this account or from this address; retry after {seconds}s.",
                fix="Wait, then log in with the right password (each failure doubles the wait).",
                retry_after_s=seconds,
                code="login_throttled",
            )

    async def failed(self, *, username: str, ip: str | None) -> None:
        for key, free in (("u:" + username, self.free), (f"ip:{ip}", self.free_ip)):
            await self._call(
                "add_failure", key, free=free, base_s=self.base_s, max_s=self.max_s, forget_s=self.forget_s
            )

    async def succeeded(self, *, username: str) -> None:
        await self._call("clear", "u:" + username)

    async def close(self) -> None:
        if isinstance(self._store, RedisFailures):
            await self._store.close()


class LoginGate:
    """At most `slots` password checks at once; more than `max_waiting` queued → 429."""

    def __init__(self, *, slots: int = 2, max_waiting: int = 32) -> None:
        self._slots = asyncio.Semaphore(slots)
        self._max_waiting = max_waiting
        self._waiting = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._waiting >= self._max_waiting:
            raise RateLimited(
                "Too many logins are being checked right now.",
                fix="Retry in a second.",
                retry_after_s=1,
                code="login_busy",
            )
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()
