"""Concurrency leases: short, renewed while the request runs, never brought back after `finish`.

In process (MemoryBackend) and on Redis (the RENEW script), with real time: a lease of a
fraction of a second, so a lapse shows within a test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from cortex_server.services.ratelimit import Decision, LimitGroup, MemoryBackend, RateLimiter, RedisBackend
from tests.access.test_ratelimit import FakeClock, principal

LEASE_S = 0.3


async def test_a_slot_whose_holder_never_returns_it_frees_itself_after_one_lease() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    group = [LimitGroup("key:1", 0, 0, 1)]
    assert (await backend.check(group, cost=0, request_id="dead", lease_ms=6000)).allowed
    assert not (await backend.check(group, cost=0, request_id="next", lease_ms=6000)).allowed
    clock.t += 6.001  # the holder died: nobody renews nor finishes
    assert (await backend.check(group, cost=0, request_id="next", lease_ms=6000)).allowed


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        backend: MemoryBackend | RedisBackend = MemoryBackend()
    else:
        url = request.getfixturevalue("redis_url")
        backend = RedisBackend(url=url, prefix=f"cortex-test-{uuid.uuid4().hex}:")
    limiter = RateLimiter(backend=backend, lease_s=LEASE_S)
    yield limiter
    await limiter.close()


async def test_a_running_request_keeps_its_slot_past_its_lease(limiter: RateLimiter) -> None:
    p = principal(conc=1)
    assert (await limiter.check(p, tokens_estimate=0, request_id="long")).allowed
    await asyncio.sleep(4 * LEASE_S)  # four leases: only renewal keeps the slot
    assert not (await limiter.check(p, tokens_estimate=0, request_id="other")).allowed
    await limiter.finish(p, request_id="long", tokens_estimate=0, tokens_used=None)
    assert (await limiter.check(p, tokens_estimate=0, request_id="other")).allowed
    await limiter.finish(p, request_id="other", tokens_estimate=0, tokens_used=None)


class GatedRenewalDouble(MemoryBackend):
    """MemoryBackend whose renewals wait for the test to let them through (a slow Redis), with
    leases of a minute whatever the limiter asks (so none lapses by itself during the test)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def check(self, groups: list[LimitGroup], *, cost: int, request_id: str, lease_ms: int) -> Decision:
        return await super().check(groups, cost=cost, request_id=request_id, lease_ms=60_000)

    async def renew(self, held: list[tuple[str, list[LimitGroup]]], *, lease_ms: int) -> None:
        self.entered.set()
        await self.gate.wait()
        await super().renew(held, lease_ms=60_000)


async def test_finish_lands_after_a_renewal_in_flight_so_the_slot_stays_free() -> None:
    backend = GatedRenewalDouble()
    limiter = RateLimiter(backend=backend, lease_s=LEASE_S)  # renews every LEASE_S / 3
    p = principal(conc=1)
    assert (await limiter.check(p, tokens_estimate=0, request_id="r1")).allowed
    await asyncio.wait_for(backend.entered.wait(), 5)  # a renewal of r1 is in flight
    finishing = asyncio.create_task(limiter.finish(p, request_id="r1", tokens_estimate=0, tokens_used=None))
    await asyncio.sleep(0.05)
    assert not finishing.done(), "finish must wait for the renewal already in flight"
    backend.gate.set()
    await asyncio.wait_for(finishing, 5)
    # had the renewal landed after finish, it would have re-added r1 and this would be refused
    assert (await limiter.check(p, tokens_estimate=0, request_id="r2")).allowed
    await limiter.close()
