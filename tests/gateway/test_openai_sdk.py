"""The official openai SDK (only base_url/api_key set) against a live daemon and real llama-servers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import openai
import pytest
from conftest import needs_llama
from gateway_support import LiveDaemon, LlamaServer, served_model, start_daemon
from sqlalchemy import func, select

from cortex_server.db.engine import make_engine
from cortex_server.db.models import UsageRecord

pytestmark = [needs_llama, pytest.mark.llama]

CHAT_MODEL = "tiny/llama-chat"  # ids may contain '/'
MESSAGES = [{"role": "user", "content": "hello"}]


def usage_rows(daemon: LiveDaemon, expected: int, timeout_s: float = 10.0) -> list[UsageRecord]:
    deadline = time.monotonic() + timeout_s
    while True:
        with daemon.ctx.session_factory() as s:
            rows = list(s.scalars(select(UsageRecord).order_by(UsageRecord.id)))
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@pytest.fixture
def chat_daemon(daemon: LiveDaemon, llama_servers: Callable[..., LlamaServer]) -> LiveDaemon:
    daemon.ctx.registry.put(
        served_model(CHAT_MODEL, llama_servers(CHAT_MODEL), request_defaults={"max_tokens": 8})
    )
    return daemon


async def test_chat_sync_async_stream_and_completions(chat_daemon: LiveDaemon) -> None:
    client = openai.OpenAI(base_url=chat_daemon.base_url, api_key=chat_daemon.api_key)
    chat = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert chat.object == "chat.completion" and chat.choices[0].message.role == "assistant"
    assert chat.usage is not None and chat.usage.completion_tokens <= 8  # the recipe default applied

    aclient = openai.AsyncOpenAI(base_url=chat_daemon.base_url, api_key=chat_daemon.api_key)
    achat = await aclient.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, max_tokens=4)
    assert achat.usage is not None and achat.usage.completion_tokens <= 4
    await aclient.close()

    chunks = list(client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True))
    assert chunks and all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.usage is None for c in chunks)  # we asked the engine for usage, the client did not
    with_usage = list(
        client.chat.completions.create(
            model=CHAT_MODEL,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            temperature=0,  # completion_tokens > 0 below: greedy, so the same every run
            seed=7,
        )
    )
    assert with_usage[-1].usage is not None and with_usage[-1].usage.completion_tokens > 0

    comp = client.completions.create(model=CHAT_MODEL, prompt="the", max_tokens=5)
    assert comp.choices and comp.usage is not None
    comp_chunks = list(client.completions.create(model=CHAT_MODEL, prompt="the", max_tokens=5, stream=True))
    assert comp_chunks

    rows = usage_rows(chat_daemon, 6)
    assert len(rows) == 6
    assert [r.streamed for r in rows] == [False, False, True, True, False, True]
    assert all(r.status_code == 200 and r.completion_tokens > 0 and r.prompt_tokens > 0 for r in rows)
    assert all(r.ttft_ms is not None for r in rows if r.streamed)
    assert {r.endpoint for r in rows} == {"chat.completions", "completions"}


def test_models_list_and_retrieve(chat_daemon: LiveDaemon) -> None:
    client = openai.OpenAI(base_url=chat_daemon.base_url, api_key=chat_daemon.api_key)
    models = client.models.list().data
    assert [m.id for m in models] == [CHAT_MODEL]
    assert client.models.retrieve(CHAT_MODEL).id == CHAT_MODEL


def test_embeddings(daemon: LiveDaemon, llama_servers: Callable[..., LlamaServer]) -> None:
    daemon.ctx.registry.put(served_model("tiny-embed", llama_servers("tiny-embed", embeddings=True)))
    client = openai.OpenAI(base_url=daemon.base_url, api_key=daemon.api_key)
    result = client.embeddings.create(model="tiny-embed", input=["hello", "the a"])
    assert len(result.data) == 2 and len(result.data[0].embedding) == 32
    [row] = usage_rows(daemon, 1)
    assert row.endpoint == "embeddings" and row.prompt_tokens > 0


def test_upstream_errors_keep_their_status(chat_daemon: LiveDaemon) -> None:
    client = openai.OpenAI(base_url=chat_daemon.base_url, api_key=chat_daemon.api_key)
    with pytest.raises(openai.BadRequestError):  # llama-server: prompt longer than the context
        client.completions.create(model=CHAT_MODEL, prompt="the " * 2000, max_tokens=1)


def test_usage_is_flushed_on_shutdown(tmp_path: Path, llama_servers: Callable[..., LlamaServer]) -> None:
    daemon = start_daemon(tmp_path / "home", usage_flush_interval_s=3600)  # only the shutdown flush can write
    try:
        daemon.ctx.registry.put(served_model("tiny-flush", llama_servers("tiny-flush")))
        client = openai.OpenAI(base_url=daemon.base_url, api_key=daemon.api_key)
        client.completions.create(model="tiny-flush", prompt="the", max_tokens=2)
    finally:
        daemon.stop()
    engine = make_engine(daemon.settings.effective_database_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(UsageRecord)) == 1
    engine.dispose()


def test_key_limits_through_the_gateway(chat_daemon: LiveDaemon) -> None:
    """Access control on the real inference path: RateLimitError with OpenAI's headers, allow-lists,
    and a usage row only for requests that reached the engine."""
    import httpx

    admin = {"authorization": f"Bearer {chat_daemon.api_key}"}

    def key(name: str, **fields: object) -> str:
        body = {"name": name, "scopes": ["inference"], **fields}
        r = httpx.post(f"{chat_daemon.settings.url}/admin/keys", json=body, headers=admin)
        assert r.status_code == 201, r.text
        return str(r.json()["key"])

    limited = openai.OpenAI(
        base_url=chat_daemon.base_url, api_key=key("two-a-minute", rpm_limit=2), max_retries=0
    )
    for _ in range(2):
        raw = limited.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=MESSAGES)
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
    with pytest.raises(openai.RateLimitError) as exc:
        limited.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert int(exc.value.response.headers["retry-after"]) >= 1
    assert exc.value.response.headers["x-ratelimit-remaining-requests"] == "0"

    other = openai.OpenAI(
        base_url=chat_daemon.base_url,
        api_key=key("only-other", allowed_models=["other-model"]),
        max_retries=0,
    )
    assert other.models.list().data == []  # the allow-list hides what the key may not use
    with pytest.raises(openai.PermissionDeniedError):
        other.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    with pytest.raises(openai.NotFoundError):
        other.models.retrieve(CHAT_MODEL)

    assert len(usage_rows(chat_daemon, 2)) == 2  # refused requests never reached the engine
