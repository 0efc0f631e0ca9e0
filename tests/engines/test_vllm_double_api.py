"""VllmTestDouble's HTTP surface in-process (the gateway's tests rely on it behaving like vLLM)."""

from __future__ import annotations

import json
import math

import httpx

from tests.doubles.vllm_test_double import State, make_app, parse_args


def client(load_s: float = 0.0, max_model_len: int = 64) -> httpx.AsyncClient:
    state = State(model="/models/tiny", served_name="tiny", max_model_len=max_model_len, load_s=load_s)
    state.token_delay_s = 0
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(state)), base_url="http://double")


def sse(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def test_cli_accepts_vllm_serve_flags() -> None:
    args = parse_args(
        ["/m", "--port", "9", "--served-model-name", "x", "--max-model-len", "8", "--enforce-eager", "-O3"]
    )
    assert (args.model, args.port, args.served_model_name, args.max_model_len) == ("/m", 9, ["x"], 8)
    assert args.ignored == ["--enforce-eager", "-O3"]


async def test_loading_then_models() -> None:
    async with client(load_s=60) as c:
        assert (await c.get("/health")).status_code == 503
        assert (await c.get("/v1/models")).status_code == 503
    async with client() as c:
        assert (await c.get("/health")).status_code == 200
        (entry,) = (await c.get("/v1/models")).json()["data"]
        assert entry["id"] == "tiny" and entry["max_model_len"] == 64 and entry["owned_by"] == "vllm"


async def test_chat_stream_with_usage() -> None:
    body = {
        "model": "tiny", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 4,
        "stream": True, "stream_options": {"include_usage": True},
    }  # fmt: skip
    async with client() as c:
        r = await c.post("/v1/chat/completions", json=body)
        events = sse(r.text)
        assert r.headers["content-type"].startswith("text/event-stream")
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        text = "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks if ch["choices"])
        assert len(text.split()) == 4
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
        assert chunks[-2]["choices"][0]["finish_reason"] == "length"

        plain = await c.post(
            "/v1/completions", json={"model": "tiny", "prompt": "a b", "max_tokens": 2, "stream": True}
        )
        assert all("usage" not in json.loads(e) for e in sse(plain.text)[:-1])

        metrics = (await c.get("/metrics")).text
        assert 'vllm:generation_tokens_total{engine="0",model_name="tiny"} 6.0' in metrics
        assert 'vllm:time_to_first_token_seconds_count{engine="0",model_name="tiny"} 2' in metrics
        assert "vllm:num_requests_running" in metrics and "vllm:gpu_cache_usage_perc" in metrics


async def test_errors_and_embeddings() -> None:
    async with client(max_model_len=10) as c:
        r = await c.post("/v1/completions", json={"model": "nope", "prompt": "x"})
        assert r.status_code == 404 and "does not exist" in r.json()["error"]["message"]
        r = await c.post("/v1/completions", json={"model": "tiny", "prompt": "x", "max_tokens": 50})
        assert r.status_code == 400 and "maximum context length is 10" in r.json()["error"]["message"]
        r = await c.post("/v1/embeddings", json={"model": "tiny", "input": ["a", "b"]})
        data = r.json()["data"]
        assert len(data) == 2 and data[0]["embedding"] != data[1]["embedding"]
        assert math.isclose(sum(x * x for x in data[0]["embedding"]), 1.0, rel_tol=1e-6)


async def test_api_keys_guard_v1_like_vllm() -> None:
    state = State(model="/models/tiny", served_name="tiny", max_model_len=64, load_s=0)
    app = make_app(state, ["k1", "k2"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://double") as c:
        assert (await c.get("/health")).status_code == 200  # vLLM leaves non-/v1 paths open
        assert (await c.get("/metrics")).status_code == 200
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic k1"}):
            r = await c.get("/v1/models", headers=headers)
            assert r.status_code == 401 and r.json() == {"error": "Unauthorized"}
        for key in ("k1", "k2"):
            assert (await c.get("/v1/models", headers={"Authorization": f"Bearer {key}"})).status_code == 200
        assert (await c.options("/v1/models")).status_code != 401
    assert parse_args(["/m", "--api-key", "a", "b"]).api_key == ["a", "b"]
