"""Two real replicas under steady traffic: kill one, it is skipped; restart it, traffic returns."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conftest import needs_llama
from gateway_support import LiveDaemon, LlamaServer, served_model
from sqlalchemy import select

from cortex_server.db.models import UsageRecord

pytestmark = [needs_llama, pytest.mark.llama, pytest.mark.slow]

MODEL = "tiny-ha"


class HealthPoller:
    """Plays the supervisor's health poller: replica ready or not → registry."""

    def __init__(self, daemon: LiveDaemon, servers: list[LlamaServer]) -> None:
        self.daemon, self.servers = daemon, servers
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            for i, s in enumerate(self.servers):
                self.daemon.ctx.registry.mark_replica_health(MODEL, f"{MODEL}/{i}", healthy=s.healthy())


def test_kill_one_replica_under_traffic(
    daemon: LiveDaemon, llama_servers: Callable[..., LlamaServer]
) -> None:
    servers = [llama_servers(MODEL), llama_servers(MODEL)]
    daemon.ctx.registry.put(served_model(MODEL, *servers, request_defaults={"max_tokens": 4}))
    poller = HealthPoller(daemon, servers)
    poller.thread.start()
    killed = daemon.ctx.registry.require(MODEL).replicas[0]

    stop = threading.Event()
    failures: list[str] = []
    headers = {"authorization": f"Bearer {daemon.api_key}"}

    def traffic(stream: bool) -> None:
        with httpx.Client(base_url=daemon.base_url, headers=headers, timeout=30) as client:
            while not stop.is_set():
                body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
                started_streaming = False
                try:
                    with client.stream("POST", "/chat/completions", json=body) as r:
                        received = b""
                        for chunk in r.iter_bytes():
                            started_streaming = started_streaming or (stream and bool(chunk))
                            received += chunk
                        if r.status_code != 200:
                            failures.append(f"{r.status_code}: {received[:200]!r}")
                except httpx.HTTPError as exc:
                    if not started_streaming:
                        failures.append(repr(exc))

    threads = [threading.Thread(target=traffic, args=(i % 2 == 0,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    servers[0].kill()
    t_kill = time.monotonic()
    while killed.healthy and time.monotonic() - t_kill < 5:
        time.sleep(0.05)
    skipped_after = time.monotonic() - t_kill
    time.sleep(1.0)

    served_before_restart = Counter(
        row["replica"] for row in _rows_since(daemon, t_kill + skipped_after + 0.2)
    )
    servers[0].start()  # same port: the poller will see it ready
    t_restart = time.monotonic()
    deadline = t_restart + 15
    while time.monotonic() < deadline and not killed.healthy:
        time.sleep(0.1)
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join(30)
    poller.stop.set()

    assert failures == []
    assert skipped_after < 5.0, f"killed replica still chosen after {skipped_after:.1f}s"
    assert served_before_restart.get(f"{MODEL}/0", 0) == 0
    assert killed.healthy
    after = Counter(row["replica"] for row in _rows_since(daemon, t_restart))
    assert after.get(f"{MODEL}/0", 0) > 0, after
    print(f"ejected after {skipped_after:.2f}s; served after restart: {dict(after)}")


def _rows_since(daemon: LiveDaemon, t_monotonic: float) -> list[dict[str, object]]:
    """Usage rows created after a monotonic instant."""
    since = datetime.now(UTC) - timedelta(seconds=time.monotonic() - t_monotonic)
    daemon.flush_usage()
    with daemon.ctx.session_factory() as s:
        rows = s.scalars(select(UsageRecord).where(UsageRecord.created_at > since)).all()
        return [{"replica": r.replica, "status": r.status_code} for r in rows]
