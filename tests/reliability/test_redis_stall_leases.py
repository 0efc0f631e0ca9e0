"""Defect 3 of issue #11: a 4 s Redis stall leaked 3 of 4 concurrency slots for 15 minutes.

During a stall the limiter's CHECKs and FINISHes time out on the daemon's side but stay
queued in Redis, which runs them when it resumes: refused requests take slots, finished ones
never return theirs. Leases are now `ratelimit_lease_s` long and renewed while a request
runs, so such slots free themselves within one lease after Redis resumes (a key limited to N
gets N parallel requests through again), while a request that outlives its lease keeps its
slot.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from starlette.requests import Request
from starlette.responses import Response

from tests.conftest import free_port
from tests.reliability.conftest import PrivateRedis, Profile
from tests.reliability.daemon_process import DaemonProcess
from tests.support.openai_upstream import OpenAIUpstream

MODEL = "lease-model"
SLOTS = 4
STALL_LEASE_S = 2.0  # the daemon's ratelimit_lease_s in the stall test


@dataclass
class SlowUpstreamDouble(OpenAIUpstream):
    """The mock upstream, answering each chat completion after `delay_s` (a request that lasts)."""

    delay_s: float = 1.0

    async def chat(self, request: Request) -> Response:
        await asyncio.sleep(self.delay_s)
        return await super().chat(request)


@dataclass
class Limited:
    daemon: DaemonProcess
    upstream: SlowUpstreamDouble
    key: str
    inflight_key: str  # the Redis sorted set of the key's concurrency leases
    lease_s: float


def chat(url: str, key: str) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    return httpx.post(
        f"{url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
    )


def parallel(url: str, key: str, n: int) -> list[int]:
    out: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        status = chat(url, key).status_code
        with lock:
            out.append(status)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return sorted(out)


def limited_daemon(
    tmp_path: Path, private_redis: PrivateRedis, *, lease_s: float, slots: int
) -> Iterator[Limited]:
    upstream = SlowUpstreamDouble(model=MODEL).start()
    prefix = f"cortex-lease-{secrets.token_hex(4)}:"
    daemon = DaemonProcess(
        home=tmp_path / "home",
        port=free_port(),
        model=MODEL,
        upstream=f"http://127.0.0.1:{upstream.port}",
        redis_url=private_redis.url,
        redis_key_prefix=prefix,
        ratelimit_lease_s=lease_s,
        ratelimit_fail_mode="closed",
    )
    daemon.start()
    try:
        resp = httpx.post(
            f"{daemon.url}/admin/keys",
            json={"name": "limited", "scopes": ["inference"], "max_concurrent": slots},
            headers={"authorization": f"Bearer {daemon.admin_key}"},
        )
        assert resp.status_code == 201, resp.text
        created = resp.json()
        yield Limited(daemon, upstream, created["key"], f"{prefix}rl:key:{created['id']}:inflight", lease_s)
    finally:
        daemon.stop()
        upstream.stop()


@pytest.fixture
def stalled(tmp_path: Path, private_redis: PrivateRedis) -> Iterator[Limited]:
    yield from limited_daemon(tmp_path, private_redis, lease_s=STALL_LEASE_S, slots=SLOTS)


@pytest.fixture
def renewed(tmp_path: Path, private_redis: PrivateRedis) -> Iterator[Limited]:
    yield from limited_daemon(tmp_path, private_redis, lease_s=1.0, slots=1)


def test_a_redis_stall_strands_no_slot_beyond_one_lease(
    stalled: Limited, private_redis: PrivateRedis, profile: Profile
) -> None:
    url, key = stalled.daemon.url, stalled.key
    stalled.upstream.delay_s = 1.5
    probe = redis.Redis.from_url(private_redis.url)
    statuses: Counter[int] = Counter()
    stop, lock = threading.Event(), threading.Lock()

    def client() -> None:  # keeps a slot busy, then keeps asking through the stall
        while not stop.is_set():
            status = chat(url, key).status_code
            with lock:
                statuses[status] += 1

    clients = [threading.Thread(target=client, daemon=True) for _ in range(SLOTS)]
    for t in clients:
        t.start()
    time.sleep(0.5)  # all slots held by requests now at their engine
    private_redis.freeze()
    time.sleep(profile.fault_s)
    stop.set()  # the clients send nothing more once their request in flight ends
    private_redis.thaw()
    time.sleep(0.3)  # Redis runs what queued up: CHECKs of refused requests take slots
    stranded = probe.zcard(stalled.inflight_key)
    for t in clients:
        t.join(60)
    time.sleep(STALL_LEASE_S + 1.0)  # one lease (plus slack), then every stranded slot is free
    left = probe.zcard(stalled.inflight_key)
    after = parallel(url, key, SLOTS)
    print(
        f"Redis SIGSTOP {profile.fault_s:.0f} s, {SLOTS} slots busy: by status {dict(statuses)}; "
        f"leases held 0.3 s after resume {stranded}, one lease ({STALL_LEASE_S:.0f} s) later "
        f"{left}; then {SLOTS} parallel requests: {after}"
    )
    assert statuses[503] > 0, "the stall was not felt (the test did not reproduce the fault)"
    assert left == 0
    assert after == [200] * SLOTS


def test_a_request_longer_than_its_lease_keeps_its_slot(renewed: Limited) -> None:
    url, key = renewed.daemon.url, renewed.key
    renewed.upstream.delay_s = 4 * renewed.lease_s
    first: list[int] = []
    holder = threading.Thread(target=lambda: first.append(chat(url, key).status_code))
    holder.start()
    time.sleep(2.5 * renewed.lease_s)  # well past the first lease: only renewal keeps the slot
    resp = chat(url, key)
    holder.join(60)
    renewed.upstream.delay_s = 0.0
    again = chat(url, key).status_code
    lasted = 4 * renewed.lease_s
    print(f"lease {renewed.lease_s:.0f} s, a request of {lasted:.0f} s: a second one got {resp.status_code}")
    assert resp.status_code == 429 and resp.json()["error"]["code"] == "rate_limit_exceeded", resp.text
    assert first == [200] and again == 200
