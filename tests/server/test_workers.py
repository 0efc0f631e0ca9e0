"""`cortexctl serve --workers N`: N processes really serve the one port, exactly one supervises
engines, and the routing registry the supervising worker builds reaches the others."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from cortex_server.services.gateway import registry_mirror
from cortex_server.services.registry import ModelRegistry, ReplicaEndpoint, ServedModel
from cortex_server.workers import check_workers, default_workers
from cortexctl.core.errors import ConfigError
from cortexctl.core.settings import Settings
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]


def test_more_than_one_worker_needs_redis(tmp_path: Path) -> None:
    alone = Settings(home=tmp_path / "h")
    assert default_workers(alone) == 1  # in-process limits cannot be shared: one worker
    with pytest.raises(ConfigError, match="CORTEX_REDIS_URL"):
        check_workers(alone, 2)
    shared = Settings(home=tmp_path / "h", redis_url="redis://127.0.0.1:1/0")
    assert default_workers(shared) == 1  # several only when asked for (revocation while Redis is down)
    check_workers(shared, 2)


def _served(name: str, *, healthy: bool, key: str) -> ServedModel:
    replica = ReplicaEndpoint(
        model_id=7,
        model_name=name,
        replica_index=0,
        base_url="http://127.0.0.1:9",
        healthy=healthy,
        api_key=key,
    )
    return ServedModel(
        served_name=name, engine="llamacpp", state="running", max_model_len=4096, replicas=[replica]
    )


async def test_the_registry_mirror_carries_models_replicas_and_engine_keys(tmp_path: Path) -> None:
    path = tmp_path / "run" / "registry.json"
    owner, follower = ModelRegistry(), ModelRegistry()
    owner.put(_served("chat", healthy=True, key="k1"))
    publish = asyncio.create_task(registry_mirror.publish(owner, path, poll_s=0.01))
    follow = asyncio.create_task(registry_mirror.follow(follower, path, poll_s=0.01))
    try:

        async def until(check: object) -> None:
            deadline = time.monotonic() + 10
            while not check() and time.monotonic() < deadline:  # type: ignore[operator]
                await asyncio.sleep(0.01)

        await until(lambda: follower.get("chat") is not None)
        got = follower.require("chat")
        assert got.max_model_len == 4096 and got.replicas[0].api_key == "k1" and got.replicas[0].healthy
        assert got.replicas[0].auth  # the engine-key header is rebuilt on the follower's side
        assert oct(path.stat().st_mode & 0o777) == "0o600"  # it holds engine keys
        owner.mark_replica_health("chat", "chat/0", healthy=False)
        await until(lambda: not follower.require("chat").replicas[0].healthy)
        assert not follower.require("chat").replicas[0].healthy
        owner.remove("chat")
        owner.put(_served("other", healthy=True, key="k2"))
        await until(lambda: follower.get("chat") is None and follower.get("other") is not None)
        assert follower.get("chat") is None and follower.require("other").replicas[0].api_key == "k2"
    finally:
        publish.cancel()
        follow.cancel()
        await asyncio.gather(publish, follow, return_exceptions=True)


def test_n_workers_serve_the_port_and_exactly_one_supervises(tmp_path: Path, redis_url: str) -> None:
    home, port = tmp_path / "home", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    env.update(
        CORTEX_HOME=str(home),
        CORTEX_PORT=str(port),
        CORTEX_REDIS_URL=redis_url,
        CORTEX_REDIS_KEY_PREFIX=f"test-{uuid.uuid4().hex[:8]}:",
    )
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cortexctl", "serve", "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        seen: dict[int, dict[str, object]] = {}
        while len(seen) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            token_file = home / "admin.token"
            if not token_file.exists():
                time.sleep(0.2)
                continue
            token = token_file.read_text().strip()
            try:  # a new connection each time: the kernel spreads connections over the workers
                r = httpx.get(url + "/admin/system", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            if r.status_code == 200:
                body = r.json()
                seen[body["pid"]] = body
        assert len(seen) == 2, f"requests landed on {len(seen)} worker(s): {sorted(seen)}"
        children = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        assert set(seen) <= children  # the workers are the serve command's own processes
        assert sorted(b["worker"]["index"] for b in seen.values()) == [0, 1]  # type: ignore[index]
        supervising = [b for b in seen.values() if b["supervising"]]
        assert len(supervising) == 1 and supervising[0]["worker"]["index"] == 0  # type: ignore[index]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()[-3000:]
