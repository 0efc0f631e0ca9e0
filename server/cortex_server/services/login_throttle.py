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

State is per daemon (in memory, bounded LRU): behind a load balancer an attacker gets one
budget per daemon, which SECURITY.md states.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from cortex_server.core.auth import retry_seconds
from cortexctl.core.errors import RateLimited


@dataclass
class _Failures:
    count: int
    last: float
    locked_until: float


class LoginThrottle:
    def __init__(
        self,
        *,
        free: int = 5,
        free_ip: int = 20,
        base_s: float = 1.0,
        max_s: float = 900.0,
        forget_s: float = 900.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.free_ip, self.base_s, self.max_s = free, free_ip, base_s, max_s
        self.forget_s, self.max_entries = forget_s, max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def _wait(self, key: str, now: float) -> float:
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        if now - entry.last > self.forget_s:
            del self._entries[key]
            return 0.0
        return max(0.0, entry.locked_until - now)

    def check(self, *, username: str, ip: str | None) -> None:
        """Raise 429 if this username or address must still wait."""
        now = self._clock()
        with self._lock:
            wait = max(self._wait("u:" + username, now), self._wait(f"ip:{ip}", now))
        if wait > 0:
            seconds = retry_seconds(wait)
            raise RateLimited(
                f"Too many failed logins for this account or from this address; retry after {seconds}s.",
                fix="Wait, then log in with the right password (each failure doubles the wait).",
                retry_after_s=seconds,
                code="login_throttled",
            )

    def failed(self, *, username: str, ip: str | None) -> None:
        now = self._clock()
        with self._lock:
            for key, free in (("u:" + username, self.free), (f"ip:{ip}", self.free_ip)):
                self._wait(key, now)  # forgets a stale entry
                entry = self._entries.get(key) or _Failures(count=0, last=now, locked_until=0.0)
                entry.count += 1
                entry.last = now
                if entry.count >= free:
                    entry.locked_until = now + min(self.max_s, self.base_s * 2 ** (entry.count - free))
                self._entries[key] = entry
                self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def succeeded(self, *, username: str) -> None:
        with self._lock:
            self._entries.pop("u:" + username, None)


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
