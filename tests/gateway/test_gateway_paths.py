"""Gateway behaviours the README promises that nothing else exercised through the real /v1 path:
streams relayed unbuffered, expired keys refused (also while cached), and the usage spool a dead
daemon left behind replayed by the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from conftest import needs_llama
from gateway_support import LiveDaemon, LlamaServer, PrivatePostgres, free_port, pg_binaries, start_daemon
from sqlalchemy import func, select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from cortex_server.db.models import ApiKey, UsageRecord
from cortex_server.services.registry import ReplicaEndpoint, ServedModel


class GatedEngine:
    """An OpenAI-style SSE upstream that sends each chunk only when the test releases it.

    If the gateway buffered a stream, the client could not see chunk N before the test lets
    the engine produce chunk N+1; the test waits for exactly that.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.gate = threading.Semaphore(0)
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def _chat(self, request: Request) -> StreamingResponse:
        await request.body()

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                await asyncio.to_thread(self.gate.acquire)
                delta = {"choices": [{"index": 0, "delta": {"content": f"tok{i}"}}], "object": "x"}
                yield b"data: " + orjson.dumps(delta) + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    def __enter__(self) -> GatedEngine:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "gated engine did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        for _ in range(10):
            self.gate.release()
        self.server.should_exit = True
        self.thread.join(10)


def _register(daemon: LiveDaemon, name: str, base_url: str) -> None:
    daemon.ctx.registry.put(
        ServedModel(
            served_name=name,
            engine="llamacpp",
            state="running",
            request_defaults={},
            request_timeout_s=30.0,
            connect_timeout_s=2.0,
            created=1_700_000_000,
            replicas=[
                ReplicaEndpoint(model_id=1, model_name=name, replica_index=0, base_url=base_url, healthy=True)
            ],
        )
    )


def test_stream_chunks_reach_the_client_before_the_engine_sends_the_next(daemon: LiveDaemon) -> None:
    with GatedEngine() as engine:
        _register(daemon, "gated", f"http://127.0.0.1:{engine.port}")
        body = {"model": "gated", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        headers = {"authorization": f"Bearer {daemon.api_key}"}
        seen: list[str] = []
        engine.gate.release()  # the first chunk: the gateway answers once the engine has started
        with httpx.Client(base_url=daemon.base_url, headers=headers, timeout=20) as client:
            with client.stream("POST", "/chat/completions", json=body) as r:
                assert r.status_code == 200
                lines = r.iter_lines()
                for i in range(3):
                    for line in lines:  # blocks until the gateway relays it: a buffer would hang here
                        if line.startswith("data: {"):
                            seen.append(orjson.loads(line[6:])["choices"][0]["delta"]["content"])
                            break
                    assert seen == [f"tok{j}" for j in range(i + 1)]
                    engine.gate.release()  # only now may the engine produce the next chunk
                rest = list(lines)
        assert "data: [DONE]" in rest


def _create_key(daemon: LiveDaemon, name: str) -> str:
    r = httpx.post(
        daemon.settings.url + "/admin/keys",
        headers={"authorization": f"Bearer {daemon.api_key}"},
        json={"name": name, "scopes": ["inference", "models:read"]},
        timeout=10,
    )
    assert r.status_code == 201 or r.status_code == 200, r.text
    return str(r.json()["key"])


def _set_expiry(daemon: LiveDaemon, name: str, when: datetime) -> None:
    with daemon.ctx.session_factory() as s, s.begin():
        s.execute(update(ApiKey).where(ApiKey.name == name).values(expires_at=when))


def test_expired_keys_are_refused_on_v1_even_while_cached(daemon: LiveDaemon) -> None:
    past = _create_key(daemon, "expired-already")
    _set_expiry(daemon, "expired-already", datetime.now(UTC) - timedelta(seconds=1))
    r = httpx.get(daemon.base_url + "/models", headers={"authorization": f"Bearer {past}"}, timeout=10)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["type"] and "expired" in r.json()["error"]["message"].lower()

    soon = _create_key(daemon, "expires-soon")
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    _set_expiry(daemon, "expires-soon", expires)
    headers = {"authorization": f"Bearer {soon}"}
    assert httpx.get(daemon.base_url + "/models", headers=headers, timeout=10).status_code == 200  # cached
    while datetime.now(UTC) < expires + timedelta(milliseconds=50):
        time.sleep(0.05)
    r = httpx.get(daemon.base_url + "/models", headers=headers, timeout=10)
    assert r.status_code == 401, "a cached key outlived its expiry"


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    if pg_binaries() is None:
        pytest.skip("PostgreSQL server binaries (initdb) not found via pg_config or /usr/lib/postgresql")
    root = Path(tempfile.mkdtemp(prefix="cortex-pg-"))  # outside pytest's 0700 tmp: postgres must reach it
    root.chmod(0o755)
    pg = PrivatePostgres(root).init()
    pg.start()
    try:
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def _usage_count(daemon: LiveDaemon) -> int:
    with daemon.ctx.session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(UsageRecord)) or 0)


@needs_llama
def test_the_journal_a_dead_daemon_left_is_replayed_by_the_next_one(
    tmp_path: Path, private_pg: PrivatePostgres, llama_servers: object
) -> None:
    server: LlamaServer = llama_servers("tiny-spool")  # type: ignore[operator]
    home = tmp_path / "home"
    first = start_daemon(home, database_url=private_pg.url, usage_flush_interval_s=0.1)
    headers = {"authorization": f"Bearer {first.api_key}"}
    body = {"model": "tiny-spool", "prompt": "hi", "max_tokens": 2}
    url = first.base_url + "/completions"
    try:
        _register(first, "tiny-spool", server.base_url)
        for _ in range(3):
            assert httpx.post(url, json=body, headers=headers, timeout=30).is_success
        first.flush_usage()
        assert _usage_count(first) == 3
        private_pg.stop()  # the database goes away; the daemon keeps serving, records stay journaled
        for _ in range(4):
            assert httpx.post(url, json=body, headers=headers, timeout=30).is_success
        first.flush_usage()
    finally:
        first.stop()  # its last flush fails too: the records stay in the journal
    files = sorted(first.settings.usage_journal_dir.glob("usage-*.jsonl"))
    lines = [line for f in files for line in f.read_bytes().splitlines() if line.strip()]
    assert len(lines) == 4, lines
    with files[-1].open("ab") as fh:  # the daemon died mid-write: a torn last record
        fh.write(b'{"request_id": "torn", "model": "tiny-sp')

    private_pg.start()
    second = start_daemon(home, database_url=private_pg.url, usage_flush_interval_s=0.1)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (_usage_count(second) < 7 or any(f.exists() for f in files)):
            time.sleep(0.1)
        assert _usage_count(second) == 7
        assert not any(f.exists() for f in files) and second.ctx.usage_writer.journal.unreadable == 1
    finally:
        second.stop()
