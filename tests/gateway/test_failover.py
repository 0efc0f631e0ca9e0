"""Two real replicas under steady traffic, one SIGKILLed: the gateway's own circuit breaker
routes around it live, with no poller telling it the replica died.

Nothing plays the supervisor here (the daemon runs with supervision off and both replicas stay
marked healthy in the registry), so only the product's retry-before-first-byte and breaker can
keep requests from failing. Every answer is checked: a non-200, an SSE error event or a stream
cut mid-way is a failure. The only failures allowed are streams that were already relaying from
the killed replica when it died (at most one per streaming client); non-streamed requests and
streams started after the kill must all succeed. The supervised path (real poller, restart with
backoff, traffic returning) is tests/server/test_model_lifecycle.py's two-replica test.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conftest import needs_llama
from gateway_support import LiveDaemon, LlamaServer, served_model
from sqlalchemy import select

from cortex_server.db.models import UsageRecord

pytestmark = [needs_llama, pytest.mark.llama, pytest.mark.slow]

MODEL = "tiny-ha"
STREAM_CLIENTS = 2
PLAIN_CLIENTS = 2


@dataclass
class Outcomes:
    ok: int = 0
    failures: list[tuple[float, bool, str]] = field(default_factory=list)  # (started_at, stream, what)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, started: float, stream: bool, what: str) -> None:
        with self.lock:
            self.failures.append((started, stream, what))


def _one_request(client: httpx.Client, stream: bool, outcomes: Outcomes) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    started = time.monotonic()
    try:
        with client.stream("POST", "/chat/completions", json=body) as r:
            received = r.read()
    except httpx.HTTPError as exc:  # a cut stream or a refused request: both are failures
        outcomes.fail(started, stream, repr(exc))
        return
    if r.status_code != 200:
        outcomes.fail(started, stream, f"{r.status_code}: {received[:200]!r}")
    elif stream and (b'"error"' in received or not received.rstrip().endswith(b"data: [DONE]")):
        outcomes.fail(started, stream, f"broken stream: {received[-200:]!r}")
    else:
        with outcomes.lock:
            outcomes.ok += 1


def test_breaker_routes_around_a_killed_replica_under_traffic(
    daemon: LiveDaemon, llama_servers: Callable[..., LlamaServer]
) -> None:
    servers = [llama_servers(MODEL), llama_servers(MODEL)]
    daemon.ctx.registry.put(served_model(MODEL, *servers, request_defaults={"max_tokens": 8}))
    victim = daemon.ctx.registry.require(MODEL).replicas[0]
    outcomes = Outcomes()
    stop = threading.Event()
    headers = {"authorization": f"Bearer {daemon.api_key}"}

    def client_loop(stream: bool) -> None:
        with httpx.Client(base_url=daemon.base_url, headers=headers, timeout=30) as client:
            while not stop.is_set():
                _one_request(client, stream, outcomes)

    threads = [threading.Thread(target=client_loop, args=(True,)) for _ in range(STREAM_CLIENTS)]
    threads += [threading.Thread(target=client_loop, args=(False,)) for _ in range(PLAIN_CLIENTS)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30  # both replicas have served before the kill
        while time.monotonic() < deadline and len(set(_replicas_since(daemon, 0.0))) < 2:
            time.sleep(0.2)
        servers[0].kill()
        t_kill = time.monotonic()
        deadline = t_kill + 30
        while time.monotonic() < deadline and victim.healthy:  # only the breaker can flip it
            time.sleep(0.02)
        ejected_after = time.monotonic() - t_kill
        t_ejected = time.monotonic()
        before = outcomes.ok
        deadline = t_ejected + 30
        while time.monotonic() < deadline and outcomes.ok < before + 20:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(60)

    assert not victim.healthy, "the breaker never ejected the killed replica"
    assert victim.consecutive_failures >= daemon.settings.circuit_breaker_failures
    plain_failures = [f for f in outcomes.failures if not f[1]]
    assert plain_failures == [], plain_failures  # retry before the first byte hides the kill
    in_flight_at_kill = [f for f in outcomes.failures if f[1] and f[0] < t_kill]
    after_kill = [f for f in outcomes.failures if f[0] >= t_kill]
    assert after_kill == [], after_kill  # nothing started after the kill may fail
    assert len(in_flight_at_kill) <= STREAM_CLIENTS, in_flight_at_kill
    served_after = Counter(_replicas_since(daemon, t_ejected))
    assert served_after.get(f"{MODEL}/0", 0) == 0, served_after
    assert served_after.get(f"{MODEL}/1", 0) >= 20, served_after
    print(
        f"ejected by the breaker {ejected_after:.2f}s after the kill; ok={outcomes.ok}, "
        f"streams cut at the kill={len(in_flight_at_kill)}; served after: {dict(served_after)}"
    )


def _replicas_since(daemon: LiveDaemon, t_monotonic: float) -> list[str]:
    """The replica of each usage row created after a monotonic instant (0.0: all rows)."""
    since = datetime.now(UTC) - timedelta(seconds=time.monotonic() - t_monotonic)
    daemon.flush_usage()
    with daemon.ctx.session_factory() as s:
        query = select(UsageRecord.replica).where(UsageRecord.model == MODEL)
        if t_monotonic:
            query = query.where(UsageRecord.created_at > since)
        return [r for r in s.scalars(query).all() if r]
