"""Rate limits per key and per org: requests/min, tokens/min, concurrent requests.

The algorithm is GCRA for requests and tokens (a burst up to the whole per-minute limit,
then a steady refill) plus a lease set for concurrency. With Redis it runs as one atomic
script per check (ratelimit_lua.CHECK), exact across daemons; without Redis the same
algorithm runs in-process (MemoryBackend). Tokens are charged at the estimate on admission
and reconciled with the real usage in `finish`.

Gateway contract (see deps.require_inference, which calls `check` for you):

    decision = await limiter.check(principal, tokens_estimate=n, request_id=rid)
    ... proxy the request ...
    await limiter.finish(principal, request_id=rid, tokens_estimate=n, tokens_used=used)

`finish` must run exactly once per admitted request (in a `finally`), streams included:
it returns the concurrency slot and corrects the token charge.

Concurrency slots are leases of `lease_s` (a few seconds), renewed every third of that while
the request runs. A slot whose holder cannot return it (the daemon died, or Redis stalled and
a timed-out CHECK or FINISH ran later) frees itself within `lease_s`, not minutes later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from prometheus_client import Counter

from cortex_server.core.auth import Principal
from cortex_server.services.ratelimit_lua import CHECK, FINISH, RENEW
from cortexctl.core.errors import ServiceUnavailable

log = logging.getLogger(__name__)

PERIOD_MS = 60_000
LEASE_S = 6.0  # default concurrency lease; renewed every LEASE_S / 3 while the request runs
FAIL_CLOSED_RETRY_S = 5  # Retry-After of the 503 while the limiter's Redis is unreachable

RATELIMIT_BACKEND_ERRORS = Counter(
    "cortex_ratelimit_backend_errors_total",
    "Rate-limit checks that could not reach Redis, by the fail mode applied.",
    ["mode"],
)


@dataclass(frozen=True)
class LimitGroup:
    """One set of limits to enforce (a key's or an org's); 0 = unlimited."""

    name: str  # "key:12" / "org:3": Redis key component
    rpm: int
    tpm: int
    concurrent: int
    req_key: str = field(init=False, repr=False, compare=False)  # the in-process backend's keys
    tok_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "req_key", f"{self.name}:req")
        object.__setattr__(self, "tok_key", f"{self.name}:tok")


@dataclass
class Decision:
    allowed: bool
    denied_by: str | None = None  # "requests" | "tokens" | "concurrency"
    retry_after_s: float = 0.0
    # x-ratelimit-*, as the response carries them (bytes: built once, never re-encoded per request)
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()
    degraded: bool = False  # Redis was down and fail_open admitted the request

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in self.raw_headers}


def groups_for(principal: Principal) -> tuple[LimitGroup, ...]:
    """The principal's limit groups, built once per principal object (the auth cache keeps one
    per key until a change invalidates it, and a change makes a new object)."""
    cached: tuple[LimitGroup, ...] | None = principal.__dict__.get("_limit_groups")
    if cached is None:
        cached = _groups(principal)
        object.__setattr__(principal, "_limit_groups", cached)  # a cache beside the frozen fields
    return cached


def _groups(principal: Principal) -> tuple[LimitGroup, ...]:
    out = []
    lim = principal.limits
    if principal.key_id is not None and (lim.rpm or lim.tpm or lim.concurrent):
        out.append(LimitGroup(f"key:{principal.key_id}", lim.rpm or 0, lim.tpm or 0, lim.concurrent or 0))
    org = principal.org_limits
    if org.rpm or org.tpm or org.concurrent:
        out.append(LimitGroup(f"org:{principal.org_id}", org.rpm or 0, org.tpm or 0, org.concurrent or 0))
    return tuple(out)


_HEADER_NAMES = {
    kind: (f"x-ratelimit-limit-{kind}".encode(), f"x-ratelimit-remaining-{kind}".encode(),
           f"x-ratelimit-reset-{kind}".encode())
    for kind in ("requests", "tokens", "concurrency")
}  # fmt: skip


def _fmt_reset(ms: float) -> str:
    """OpenAI writes resets as durations like '6m0s' or '1.5s'."""
    seconds = max(0.0, ms / 1000)
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60)}s"
    return f"{seconds:.3g}s"


def _decision(raw: list[object]) -> Decision:
    """The script's reply: allowed, denied_by, retry_ms, limit/remaining/reset for requests, then
    tokens, then limit/remaining for concurrency."""
    denied_by = raw[1].decode() if isinstance(raw[1], bytes) else str(raw[1])
    # the in-process backend answers ints; Redis answers bytes or ints
    numbers = [x if type(x) is int else int(float(str(x))) for x in (raw[0], *raw[2:])]
    allowed, retry_ms, r_lim, r_rem, r_reset, t_lim, t_rem, t_reset, c_lim, c_rem = numbers
    headers: list[tuple[bytes, bytes]] = []
    for kind, lim, rem, reset in (("requests", r_lim, r_rem, r_reset), ("tokens", t_lim, t_rem, t_reset)):
        if lim > 0:
            names = _HEADER_NAMES[kind]
            headers += (
                (names[0], b"%d" % lim),
                (names[1], b"%d" % max(rem, 0)),
                (names[2], _fmt_reset(min(reset, PERIOD_MS)).encode()),
            )
    if c_lim > 0:
        names = _HEADER_NAMES["concurrency"]
        headers += ((names[0], b"%d" % c_lim), (names[1], b"%d" % max(c_rem, 0)))
    return Decision(
        allowed=bool(allowed),
        denied_by=denied_by or None,
        retry_after_s=retry_ms / 1000,
        raw_headers=tuple(headers),
    )


class Backend(Protocol):
    unreachable: tuple[type[Exception], ...]  # what the backend raises while it cannot answer

    async def ping(self) -> bool: ...
    async def check(
        self, groups: Sequence[LimitGroup], *, cost: int, request_id: str, lease_ms: int
    ) -> Decision: ...
    async def renew(self, held: list[tuple[str, list[LimitGroup]]], *, lease_ms: int) -> None: ...
    async def finish(self, groups: Sequence[LimitGroup], *, delta: int, request_id: str) -> None: ...
    async def close(self) -> None: ...


class MemoryBackend:
    """The CHECK/FINISH scripts in Python, for a daemon without Redis. Same numbers, one process."""

    unreachable: tuple[type[Exception], ...] = (OSError,)

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()  # callers may be on worker threads too

    def _now(self) -> float:
        return self._clock() * 1000

    async def ping(self) -> bool:
        return True

    async def check(
        self, groups: Sequence[LimitGroup], *, cost: int, request_id: str, lease_ms: int
    ) -> Decision:
        with self._lock:
            return _decision(self._check(groups, cost=cost, request_id=request_id, lease_ms=lease_ms))

    async def renew(self, held: list[tuple[str, list[LimitGroup]]], *, lease_ms: int) -> None:
        with self._lock:
            expiry = self._now() + lease_ms
            for request_id, groups in held:
                for g in groups:
                    if g.concurrent > 0:
                        self._leases.setdefault(g.name, {})[request_id] = expiry

    def _check(
        self, groups: Sequence[LimitGroup], *, cost: int, request_id: str, lease_ms: int
    ) -> list[object]:
        now = self._now()
        commits: list[tuple[str, float]] = []
        rq = [-1, -1, 0]
        tk = [-1, -1, 0]
        cc = [-1, -1]
        resets: dict[str, int] = {}

        def gcra(key: str, limit: int, amount: int, hdr: list[int]) -> float | None:
            interval = PERIOD_MS / limit
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + amount * interval
            over = new_tat - now - PERIOD_MS
            if over > 0.001:
                resets[key] = min(PERIOD_MS, math.ceil(tat - now))  # full again in; ≤ the window
                return float(PERIOD_MS) if amount > limit else over
            remaining = math.floor((PERIOD_MS - (new_tat - now)) / interval + 0.001)
            if hdr[1] < 0 or remaining < hdr[1]:
                hdr[:] = [limit, remaining, math.ceil(new_tat - now)]
            commits.append((key, new_tat))
            return None

        for g in groups:
            if g.rpm > 0 and (retry := gcra(g.req_key, g.rpm, 1, rq)) is not None:
                reset = resets[g.req_key]
                return [0, "requests", math.ceil(retry), g.rpm, 0, reset, -1, -1, 0, -1, -1]
            if g.tpm > 0 and (retry := gcra(g.tok_key, g.tpm, cost, tk)) is not None:
                reset = resets[g.tok_key]
                return [0, "tokens", math.ceil(retry), -1, -1, 0, g.tpm, 0, reset, -1, -1]
            if g.concurrent > 0:
                leases = self._leases.setdefault(g.name, {})
                for rid in [r for r, exp in leases.items() if exp <= now]:
                    del leases[rid]
                if len(leases) >= g.concurrent:
                    return [0, "concurrency", 1000, *rq, *tk, g.concurrent, 0]
                if cc[1] < 0 or g.concurrent - len(leases) - 1 < cc[1]:
                    cc[:] = [g.concurrent, g.concurrent - len(leases) - 1]
        for key, tat in commits:
            self._tat[key] = tat
        for g in groups:
            if g.concurrent > 0:
                self._leases.setdefault(g.name, {})[request_id] = now + lease_ms
        return [1, "", 0, *rq, *tk, *cc]

    async def finish(self, groups: Sequence[LimitGroup], *, delta: int, request_id: str) -> None:
        with self._lock:
            now = self._now()
            for g in groups:
                key = g.tok_key
                if g.tpm > 0 and delta != 0 and (key in self._tat or delta > 0):
                    new_tat = max(self._tat.get(key, now), now) + delta * (PERIOD_MS / g.tpm)
                    if new_tat <= now:
                        self._tat.pop(key, None)
                    else:
                        self._tat[key] = new_tat
                self._leases.get(g.name, {}).pop(request_id, None)

    async def close(self) -> None:
        return None


class RedisBackend:
    def __init__(self, *, url: str, prefix: str, timeout_s: float = 0.5) -> None:
        # imported here: a daemon without CORTEX_REDIS_URL never loads redis (~5.6 MiB a process)
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        self.unreachable: tuple[type[Exception], ...] = (RedisError, OSError)
        self._prefix = prefix
        self._redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
        )
        self._check = self._redis.register_script(CHECK)
        self._finish = self._redis.register_script(FINISH)
        self._renew = self._redis.register_script(RENEW)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except self.unreachable:
            return False

    def _keys(self, g: LimitGroup, *parts: str) -> list[str]:
        return [f"{self._prefix}rl:{g.name}:{p}" for p in parts]

    async def check(
        self, groups: Sequence[LimitGroup], *, cost: int, request_id: str, lease_ms: int
    ) -> Decision:
        keys = [k for g in groups for k in self._keys(g, "req", "tok", "inflight")]
        args: list[str | int] = [cost, request_id, lease_ms, PERIOD_MS]
        args += [v for g in groups for v in (g.rpm, g.tpm, g.concurrent)]
        return _decision(await self._check(keys=keys, args=args))

    async def renew(self, held: list[tuple[str, list[LimitGroup]]], *, lease_ms: int) -> None:
        pairs = [(self._keys(g, "inflight")[0], rid) for rid, gs in held for g in gs if g.concurrent > 0]
        if pairs:
            await self._renew(keys=[k for k, _ in pairs], args=[lease_ms, *[rid for _, rid in pairs]])

    async def finish(self, groups: Sequence[LimitGroup], *, delta: int, request_id: str) -> None:
        keys = [k for g in groups for k in self._keys(g, "tok", "inflight")]
        await self._finish(keys=keys, args=[delta, request_id, PERIOD_MS, *[g.tpm for g in groups]])

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(
        self, *, backend: Backend, fail_mode: Literal["open", "closed"] = "closed", lease_s: float = LEASE_S
    ) -> None:
        self.backend = backend
        self.fail_mode = fail_mode
        self.lease_s = lease_s
        self._held: dict[str, list[LimitGroup]] = {}  # request id → groups whose slot it holds
        self._renewer: asyncio.Task[None] | None = None
        self._renewing: asyncio.Future[None] | None = None  # the renewal now in flight
        self._renewing_ids: frozenset[str] = frozenset()

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease_s * 1000))

    def _hold(self, request_id: str, groups: Sequence[LimitGroup]) -> None:
        """Keep this request's slots renewed until `finish` (one renewal task per event loop)."""
        self._held[request_id] = [g for g in groups if g.concurrent > 0]
        loop = asyncio.get_running_loop()
        if self._renewer is None or self._renewer.done() or self._renewer.get_loop() is not loop:
            self._renewer = loop.create_task(self._renew_forever(), name="ratelimit-lease-renewal")

    async def _renew_forever(self) -> None:
        while self._held:
            await asyncio.sleep(self.lease_s / 3)
            held = list(self._held.items())
            if not held:
                continue
            self._renewing_ids = frozenset(rid for rid, _ in held)
            self._renewing = asyncio.ensure_future(self.backend.renew(held, lease_ms=self._lease_ms))
            try:
                await self._renewing
            except Exception as exc:  # the renewal task must outlive any one failure
                RATELIMIT_BACKEND_ERRORS.labels(mode=self.fail_mode).inc()
                log.warning("rate limiter lease renewal failed (%s); retrying", type(exc).__name__)
            finally:
                self._renewing, self._renewing_ids = None, frozenset()

    async def check(self, principal: Principal, *, tokens_estimate: int, request_id: str) -> Decision:
        """Admit or refuse one request; an admitted one holds a concurrency slot until `finish`."""
        groups = groups_for(principal)
        if not groups:
            return Decision(allowed=True)
        try:
            decision = await self.backend.check(
                groups, cost=max(0, tokens_estimate), request_id=request_id, lease_ms=self._lease_ms
            )
        except self.backend.unreachable as exc:
            RATELIMIT_BACKEND_ERRORS.labels(mode=self.fail_mode).inc()
            log.warning(
                "rate limiter backend unreachable (%s); failing %s", type(exc).__name__, self.fail_mode
            )
            if self.fail_mode == "open":
                return Decision(allowed=True, degraded=True)
            raise ServiceUnavailable(
                "The rate limiter is unavailable, so requests with limits are refused.",
                fix="Check that Redis (CORTEX_REDIS_URL) is running; retry shortly.",
                code="ratelimiter_unavailable",
                details={"retry_after_s": FAIL_CLOSED_RETRY_S},
            ) from None
        if decision.allowed and any(g.concurrent > 0 for g in groups):
            self._hold(request_id, groups)
        return decision

    async def finish(
        self, principal: Principal, *, request_id: str, tokens_estimate: int, tokens_used: int | None
    ) -> None:
        """Return the concurrency slot and charge real usage instead of the estimate (never raises)."""
        groups = groups_for(principal)
        if not groups:
            return
        delta = 0 if tokens_used is None else tokens_used - max(0, tokens_estimate)
        # stop renewing first, then let a renewal already in flight land: FINISH must come after it,
        # or that renewal would re-add the lease FINISH just removed
        self._held.pop(request_id, None)
        renewing = self._renewing
        if renewing is not None and request_id in self._renewing_ids and not renewing.done():
            with contextlib.suppress(Exception):
                await asyncio.wait([renewing])
        try:
            await self.backend.finish(groups, delta=delta, request_id=request_id)
        except self.backend.unreachable as exc:
            RATELIMIT_BACKEND_ERRORS.labels(mode=self.fail_mode).inc()
            log.warning("rate limiter finish failed (%s); the slot expires by lease", type(exc).__name__)

    async def ready(self) -> bool:
        """False while a configured Redis is unreachable (/ready reports it)."""
        return await self.backend.ping()

    async def close(self) -> None:
        if self._renewer is not None and not self._renewer.done():
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._renewer
        await self.backend.close()


def make_rate_limiter(
    *,
    redis_url: str | None,
    prefix: str,
    fail_mode: Literal["open", "closed"],
    lease_s: float = LEASE_S,
) -> RateLimiter:
    backend: Backend = RedisBackend(url=redis_url, prefix=prefix) if redis_url else MemoryBackend()
    return RateLimiter(backend=backend, fail_mode=fail_mode, lease_s=lease_s)
