"""The admission service owns an inference request's lease from admission to the last byte, under
one request id: the rate-limit lease, the `x-request-id` header and the usage row share it.

The engine is VllmTestDouble (a real HTTP process), streaming at 0.05 s per token; the daemon
uses the in-process limiter, whose leases the test reads to see which request holds the slot.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from gateway_support import LiveDaemon
from sqlalchemy import select
from test_disconnect import slow_engine  # noqa: F401 - the engine fixture

from cortex_server.db.models import UsageRecord
from cortex_server.services.registry import ReplicaEndpoint, ServedModel


def _serve(daemon: LiveDaemon, url: str) -> None:
    daemon.ctx.registry.put(
        ServedModel(
            served_name="slow",
            engine="vllm",
            state="running",
            replicas=[
                ReplicaEndpoint(model_id=1, model_name="slow", replica_index=0, base_url=url, healthy=True)
            ],
        )
    )


def _key(daemon: LiveDaemon) -> tuple[str, int]:
    made = httpx.post(
        f"{daemon.settings.url}/admin/keys",
        json={"name": "one-at-a-time", "scopes": ["inference"], "max_concurrent": 1},
        headers={"Authorization": f"Bearer {daemon.api_key}"},
    )
    assert made.status_code == 201, made.text
    return made.json()["key"], made.json()["id"]


def _usage_row(daemon: LiveDaemon, request_id: str) -> UsageRecord | None:
    daemon.flush_usage()
    with daemon.ctx.session_factory() as s:
        return s.scalar(select(UsageRecord).where(UsageRecord.request_id == request_id))


def _leases(daemon: LiveDaemon, key_id: int) -> set[str]:
    backend = daemon.ctx.rate_limiter.backend
    return set(backend._leases.get(f"key:{key_id}", {}))  # type: ignore[attr-defined]


async def test_a_stream_holds_its_lease_under_its_request_id_until_its_last_byte(
    daemon: LiveDaemon,
    slow_engine: str,  # noqa: F811
) -> None:
    _serve(daemon, slow_engine)
    key, key_id = _key(daemon)
    h = {"Authorization": f"Bearer {key}"}
    # the double streams 0.2 s per token: 8 tokens keep the stream open well past the checks below
    body = {"model": "slow", "prompt": "hi", "max_tokens": 8, "stream": True}
    async with httpx.AsyncClient(base_url=daemon.base_url, timeout=30) as client:
        async with client.stream("POST", "/completions", json=body, headers=h) as first:
            assert first.status_code == 200
            request_id = first.headers["x-request-id"]
            assert _leases(daemon, key_id) == {request_id}  # the lease is the request's own id
            second = await client.post("/completions", json={**body, "stream": False}, headers=h)
            assert second.status_code == 429, second.text
            async for _ in first.aiter_bytes():
                pass
        # the slot is free once the last byte is out: no teardown order involved
        deadline = time.monotonic() + 5
        while _leases(daemon, key_id) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert _leases(daemon, key_id) == set()
        third = await client.post("/completions", json={**body, "max_tokens": 2, "stream": False}, headers=h)
        assert third.status_code == 200, third.text
        assert third.headers["x-ratelimit-limit-concurrency"] == "1"
        assert _leases(daemon, key_id) == set()  # a complete answer released before it was returned
    row = _usage_row(daemon, request_id)
    assert row is not None and row.streamed and row.completion_tokens == 8
    other = _usage_row(daemon, third.headers["x-request-id"])
    assert other is not None and not other.streamed
