"""The rate limiter's algorithm, on the in-process backend and the Redis script (same expectations)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from cortex_server.core.auth import Limits, Principal
from cortex_server.services.ratelimit import MemoryBackend, RateLimiter, RedisBackend
from cortexctl.core.errors import ServiceUnavailable
from tests.conftest import free_port


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def principal(
    *, rpm: int = 0, tpm: int = 0, conc: int = 0, org: Limits | None = None, key_id: int = 1
) -> Principal:
    return Principal(
        kind="key",
        key_id=key_id,
        org_id=7,
        user_id=None,
        name="k",
        scopes=frozenset({"inference"}),
        limits=Limits(rpm=rpm or None, tpm=tpm or None, concurrent=conc or None),
        org_limits=org or Limits(),
    )


async def admit(limiter: RateLimiter, p: Principal, n: int, *, tokens: int = 0) -> list[bool]:
    decisions = await asyncio.gather(
        *(limiter.check(p, tokens_estimate=tokens, request_id=uuid.uuid4().hex) for _ in range(n))
    )
    return [d.allowed for d in decisions]


async def test_gcra_requests_burst_then_refill_in_process() -> None:
    clock = FakeClock()
    limiter = RateLimiter(backend=MemoryBackend(clock=clock))
    p = principal(rpm=6)  # one request per 10 s, burst 6
    assert (await admit(limiter, p, 10)).count(True) == 6
    denied = await limiter.check(p, tokens_estimate=0, request_id="x")
    assert not denied.allowed and denied.denied_by == "requests" and 9.9 <= denied.retry_after_s <= 10.0
    assert denied.headers["x-ratelimit-remaining-requests"] == "0"
    clock.t += 10.0
    assert (await admit(limiter, p, 3)).count(True) == 1
    clock.t += 60.0
    ok = await limiter.check(p, tokens_estimate=0, request_id="y")
    assert ok.allowed and ok.headers == {
        "x-ratelimit-limit-requests": "6",
        "x-ratelimit-remaining-requests": "5",
        "x-ratelimit-reset-requests": "10s",
    }


async def test_tokens_are_reconciled_with_real_usage() -> None:
    clock = FakeClock()
    limiter = RateLimiter(backend=MemoryBackend(clock=clock))
    p = principal(tpm=1000)
    first = await limiter.check(p, tokens_estimate=900, request_id="a")
    assert first.allowed and first.headers["x-ratelimit-remaining-tokens"] == "100"
    assert not (await limiter.check(p, tokens_estimate=200, request_id="b")).allowed
    await limiter.finish(p, request_id="a", tokens_estimate=900, tokens_used=100)  # used far less
    assert (await limiter.check(p, tokens_estimate=800, request_id="c")).allowed
    await limiter.finish(p, request_id="c", tokens_estimate=800, tokens_used=1500)  # used far more
    clock.t += 30  # half the window refills 500 tokens, but we are 700 over
    assert not (await limiter.check(p, tokens_estimate=1, request_id="d")).allowed
    too_big = await limiter.check(p, tokens_estimate=5000, request_id="e")
    assert not too_big.allowed and too_big.denied_by == "tokens"


async def test_concurrency_slots_are_returned_by_finish() -> None:
    limiter = RateLimiter(backend=MemoryBackend())
    p = principal(conc=2)
    assert await admit(limiter, p, 2) == [True, True]
    blocked = await limiter.check(p, tokens_estimate=0, request_id="z")
    assert not blocked.allowed and blocked.denied_by == "concurrency"
    # release one (we need the id: admit again with known ids)
    limiter2 = RateLimiter(backend=MemoryBackend())
    assert (await limiter2.check(p, tokens_estimate=0, request_id="r1")).allowed
    assert (await limiter2.check(p, tokens_estimate=0, request_id="r2")).allowed
    assert not (await limiter2.check(p, tokens_estimate=0, request_id="r3")).allowed
    await limiter2.finish(p, request_id="r1", tokens_estimate=0, tokens_used=None)
    assert (await limiter2.check(p, tokens_estimate=0, request_id="r4")).allowed


async def test_org_limit_binds_all_keys_of_the_org_and_refusal_commits_nothing() -> None:
    limiter = RateLimiter(backend=MemoryBackend(clock=FakeClock()))
    org = Limits(rpm=5)
    k1, k2 = principal(rpm=4, org=org, key_id=1), principal(rpm=4, org=org, key_id=2)
    assert (await admit(limiter, k1, 4)).count(True) == 4
    assert (await admit(limiter, k2, 4)).count(True) == 1  # the org's 5th and last
    # k1's key limit refused before the org was charged, so k2 was not starved by k1's refusals
    assert (await admit(limiter, k1, 3)).count(True) == 0


@pytest.fixture
async def redis_limiter(redis_url: str) -> AsyncIterator[RateLimiter]:
    limiter = RateLimiter(backend=RedisBackend(url=redis_url, prefix=f"cortex-test-{uuid.uuid4().hex}:"))
    yield limiter
    await limiter.close()


@pytest.mark.redis
async def test_redis_script_is_exact_under_concurrency(redis_limiter: RateLimiter) -> None:
    p = principal(rpm=7, tpm=10_000, conc=50)
    assert (await admit(redis_limiter, p, 40, tokens=10)).count(True) == 7
    denied = await redis_limiter.check(p, tokens_estimate=0, request_id="late")
    assert denied.denied_by == "requests" and denied.retry_after_s > 8


@pytest.mark.redis
async def test_redis_tokens_and_concurrency_match_the_in_process_backend(redis_limiter: RateLimiter) -> None:
    p = principal(tpm=1000, conc=1)
    first = await redis_limiter.check(p, tokens_estimate=900, request_id="a")
    assert first.allowed and first.headers["x-ratelimit-remaining-tokens"] == "100"
    assert (await redis_limiter.check(p, tokens_estimate=0, request_id="b")).denied_by == "concurrency"
    await redis_limiter.finish(p, request_id="a", tokens_estimate=900, tokens_used=100)
    second = await redis_limiter.check(p, tokens_estimate=800, request_id="c")
    assert second.allowed, second


async def test_unreachable_redis_fails_closed_or_open_and_is_counted() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"

    def count(mode: str) -> float:
        return REGISTRY.get_sample_value("cortex_ratelimit_backend_errors_total", {"mode": mode}) or 0.0

    closed = RateLimiter(backend=RedisBackend(url=dead, prefix="x:"), fail_mode="closed")
    before = count("closed")
    with pytest.raises(ServiceUnavailable):
        await closed.check(principal(rpm=1), tokens_estimate=0, request_id="a")
    assert count("closed") == before + 1
    unlimited = await closed.check(principal(), tokens_estimate=0, request_id="b")
    assert unlimited.allowed  # keys without limits never touch Redis
    opened = RateLimiter(backend=RedisBackend(url=dead, prefix="x:"), fail_mode="open")
    before = count("open")
    decision = await opened.check(principal(rpm=1), tokens_estimate=0, request_id="c")
    assert decision.allowed and decision.degraded and count("open") == before + 1
    await closed.close()
    await opened.close()


def _seconds(reset: str) -> float:
    minutes, _, rest = reset.partition("m") if "m" in reset else ("0", "", reset)
    return int(minutes) * 60 + float(rest.rstrip("s") or 0)


async def test_answers_say_what_they_mean_in_process() -> None:
    await _answers_say_what_they_mean(RateLimiter(backend=MemoryBackend()))


@pytest.mark.redis
async def test_answers_say_what_they_mean_in_redis(redis_limiter: RateLimiter) -> None:
    await _answers_say_what_they_mean(redis_limiter)


async def _answers_say_what_they_mean(limiter: RateLimiter) -> None:
    """A concurrency refusal carries its headers; a reset never exceeds the window."""
    key_id = int(uuid.uuid4().int % 1_000_000)
    p = principal(rpm=3, tpm=1000, conc=1, key_id=key_id)
    held = await limiter.check(p, tokens_estimate=10, request_id="held")
    assert held.allowed and held.headers["x-ratelimit-limit-concurrency"] == "1"
    assert held.headers["x-ratelimit-remaining-concurrency"] == "0"
    busy = await limiter.check(p, tokens_estimate=10, request_id="busy")
    assert not busy.allowed and busy.denied_by == "concurrency"
    assert busy.headers["x-ratelimit-limit-concurrency"] == "1"
    assert busy.headers["x-ratelimit-remaining-concurrency"] == "0"
    assert {"x-ratelimit-limit-requests", "x-ratelimit-limit-tokens"} <= set(busy.headers)
    await limiter.finish(p, request_id="held", tokens_estimate=10, tokens_used=10)
    for rid in ("a", "b"):
        ok = await limiter.check(p, tokens_estimate=10, request_id=rid)
        assert ok.allowed
        await limiter.finish(p, request_id=rid, tokens_estimate=10, tokens_used=10)
    refused = await limiter.check(p, tokens_estimate=10, request_id="c")
    assert not refused.allowed and refused.denied_by == "requests"
    assert 0 < _seconds(refused.headers["x-ratelimit-reset-requests"]) <= 60  # was retry + 60 s
    assert refused.retry_after_s <= _seconds(refused.headers["x-ratelimit-reset-requests"]) + 0.001


# The 429 contract on the wire (Retry-After, x-ratelimit-* headers, the message agreeing with
# them) through the real /v1 routes: tests/access/test_gateway_access.py.
