"""The official openai SDK against the daemon as users run it: `cortexctl up` (supervisor on),
models created from recipes with `cortexctl model create`, engines started by the supervisor on
the real llama-server. Nothing is put into the daemon from the test's side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.served_daemon import ServedDaemon, create_tiny_model, daemon_up

pytestmark = [pytest.mark.slow, pytest.mark.llama]

CHAT = "tiny-chat"
EMBED = "tiny-embed"
MESSAGES = [{"role": "user", "content": "hello"}]
GREEDY = {"temperature": 0, "seed": 7}  # token counts below hold on every run


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, llama_server_bin: Path, tiny_gguf_file: Path
) -> Iterator[ServedDaemon]:
    root = tmp_path_factory.mktemp("sdk")
    with daemon_up(root / "home", llama_server_bin=llama_server_bin, tiny_gguf=tiny_gguf_file) as daemon:
        create_tiny_model(
            daemon,
            root,
            CHAT,
            args="    chat_template: chatml\n",
            spec="  request_defaults:\n    max_tokens: 8\n",
        )
        create_tiny_model(daemon, root, EMBED, args="    embeddings: true\n    pooling: mean\n")
        yield daemon


@pytest.fixture(scope="module")
def client(served: ServedDaemon) -> openai.OpenAI:
    key = served.key("sdk-e2e")
    return openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0)


def test_models_are_the_recipes_served_names(client: openai.OpenAI) -> None:
    assert sorted(m.id for m in client.models.list().data) == [CHAT, EMBED]
    assert client.models.retrieve(CHAT).id == CHAT


def test_chat_sync_async_and_stream(served: ServedDaemon, client: openai.OpenAI) -> None:
    chat = client.chat.completions.create(model=CHAT, messages=MESSAGES, **GREEDY)
    assert chat.object == "chat.completion" and chat.choices[0].message.role == "assistant"
    assert chat.usage is not None and 0 < chat.usage.completion_tokens <= 8  # the recipe's default

    async def async_chat() -> int:
        async with openai.AsyncOpenAI(base_url=client.base_url, api_key=client.api_key, max_retries=0) as a:
            out = await a.chat.completions.create(model=CHAT, messages=MESSAGES, max_tokens=3, **GREEDY)
            assert out.usage is not None
            return out.usage.completion_tokens

    assert 0 < asyncio.run(async_chat()) <= 3

    chunks = list(client.chat.completions.create(model=CHAT, messages=MESSAGES, stream=True, **GREEDY))
    assert chunks and all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.usage is None for c in chunks)  # the client did not ask for usage
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")
    with_usage = list(
        client.chat.completions.create(
            model=CHAT, messages=MESSAGES, stream=True, stream_options={"include_usage": True}, **GREEDY
        )
    )
    assert with_usage[-1].usage is not None and with_usage[-1].usage.completion_tokens > 0


def test_completions_and_stream(client: openai.OpenAI) -> None:
    comp = client.completions.create(model=CHAT, prompt="the", max_tokens=5, **GREEDY)
    assert comp.object == "text_completion" and comp.usage is not None and comp.usage.completion_tokens > 0
    streamed = list(client.completions.create(model=CHAT, prompt="the", max_tokens=5, stream=True, **GREEDY))
    assert streamed and "".join(c.choices[0].text for c in streamed if c.choices) == comp.choices[0].text


def test_embeddings_from_an_embeddings_recipe(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model=EMBED, input=["hello", "the a"])
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 64  # the tiny model's n_embd
    assert result.usage.prompt_tokens > 0
    with pytest.raises(openai.BadRequestError) as refused:  # a chat recipe does not serve embeddings
        client.embeddings.create(model=CHAT, input="hello")
    assert "spec.args.embeddings" in refused.value.message


def test_errors_in_openai_shape(served: ServedDaemon, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert unknown.value.code == "model_not_found"

    bad_key = openai.OpenAI(base_url=client.base_url, api_key="sk-cortex-" + "x" * 43, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        bad_key.chat.completions.create(model=CHAT, messages=MESSAGES)
    assert auth.value.status_code == 401 and auth.value.code == "invalid_api_key"

    with pytest.raises(openai.BadRequestError) as malformed:
        client.chat.completions.create(model=CHAT, messages=MESSAGES, extra_body={"stream_options": "yes"})
    assert malformed.value.param == "stream_options"
    with pytest.raises(openai.BadRequestError) as no_model:
        client.chat.completions.create(model="", messages=MESSAGES)
    assert no_model.value.code == "missing_required_parameter"
    # a body that is not JSON at all: the same error shape (the SDK cannot send one)
    raw = httpx.post(
        served.url + "/v1/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {client.api_key}", "Content-Type": "application/json"},
    )
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_json"


def test_limits_are_429_with_openai_headers(served: ServedDaemon, client: openai.OpenAI) -> None:
    limited = openai.OpenAI(
        base_url=client.base_url, api_key=served.key("two-a-minute", rpm_limit=2), max_retries=0
    )
    for remaining in ("1", "0"):
        raw = limited.chat.completions.with_raw_response.create(model=CHAT, messages=MESSAGES, **GREEDY)
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
        assert raw.headers["x-ratelimit-remaining-requests"] == remaining
    with pytest.raises(openai.RateLimitError) as exc:
        limited.chat.completions.create(model=CHAT, messages=MESSAGES)
    headers = exc.value.response.headers
    assert int(headers["retry-after"]) >= 1 and headers["x-ratelimit-remaining-requests"] == "0"
    assert exc.value.type == "rate_limit_error"
