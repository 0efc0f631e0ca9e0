# ruff: noqa: E501  (vLLM messages are reproduced whole)
"""VllmTestDouble: a stand-in for `vllm serve` on hosts without a GPU (tests only).

vLLM needs a GPU, so the tests run this program in its place. It accepts the
`vllm serve MODEL --host H --port P --served-model-name N --max-model-len L …`
command line (unknown flags are ignored) and speaks vLLM's HTTP surface:
`/health`, `/v1/models` (with `max_model_len`), `/metrics` (Prometheus text with
real `vllm:` metric names), `/v1/completions` and `/v1/chat/completions`
(streaming SSE too, `stream_options.include_usage`), and `/v1/embeddings`.
The text it "generates" is deterministic filler; it is NOT a model.

It also reproduces a few startup failures with vLLM's own log lines, so the
diagnosis of a vLLM start can be tested end to end:
- MODEL is neither an existing folder → "Invalid repository ID or local directory"
- --tensor-parallel-size > VLLM_TEST_DOUBLE_GPUS (default 1) → vLLM's GPU-count error
- --max-model-len > the model's config.json max_position_embeddings → vLLM's error

API keys as vLLM checks them (AuthenticationMiddleware of its OpenAI server): the
keys of `--api-key` (several allowed), else the VLLM_API_KEY environment
variable; when any is set, every path starting with /v1 needs
`Authorization: Bearer <key>` (compared by sha256 digest in constant time) or
gets 401 `{"error": "Unauthorized"}`; /health and /metrics stay open, OPTIONS too.

Environment: VLLM_TEST_DOUBLE_LOAD_S (simulated loading, /health answers 503;
default 2), VLLM_TEST_DOUBLE_TOKEN_DELAY_S (per streamed token; default 0.005),
VLLM_TEST_DOUBLE_GPUS (default 1), VLLM_TEST_DOUBLE_EMBED_DIM (default 16).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import secrets
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "and", "runs", "far")
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)


def log(level: str, msg: str) -> None:
    stamp = time.strftime("%m-%d %H:%M:%S")
    print(f"{level} {stamp} [api_server.py] {msg}", flush=True)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for i, b in enumerate(self.buckets):
            if value <= b:
                self.counts[i] += 1

    def render(self, name: str, labels: str) -> list[str]:
        out = [f"# HELP {name} Histogram of {name.split(':', 1)[1]}.", f"# TYPE {name} histogram"]
        out += [
            f'{name}_bucket{{{labels},le="{b}"}} {c}' for b, c in zip(self.buckets, self.counts, strict=True)
        ]
        out += [f'{name}_bucket{{{labels},le="+Inf"}} {self.total}', f"{name}_count{{{labels}}} {self.total}"]
        return out + [f"{name}_sum{{{labels}}} {self.sum}"]


class State:
    def __init__(self, *, model: str, served_name: str, max_model_len: int, load_s: float) -> None:
        self.model = model
        self.served_name = served_name
        self.max_model_len = max_model_len
        self.ready_at = time.monotonic() + load_s
        self.created = int(time.time())
        self.running = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success: dict[str, int] = {"stop": 0, "length": 0}
        self.ttft = Histogram(TTFT_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)
        self.token_delay_s = float(os.environ.get("VLLM_TEST_DOUBLE_TOKEN_DELAY_S", "0.005"))
        self.embed_dim = int(os.environ.get("VLLM_TEST_DOUBLE_EMBED_DIM", "16"))

    @property
    def ready(self) -> bool:
        return time.monotonic() >= self.ready_at


def error(
    status: int, message: str, type_: str = "BadRequestError", param: str | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": status}}
    return JSONResponse(body, status_code=status)


def count_tokens(text: str) -> int:
    return max(1, len(text.split()))


def prompt_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        parts = []
        for m in body.get("messages") or []:
            c = m.get("content")
            if isinstance(c, list):
                c = " ".join(p.get("text", "") for p in c if isinstance(p, dict))
            parts.append(f"{m.get('role', '')}: {c or ''}")
        return "\n".join(parts)
    p = body.get("prompt", "")
    return " ".join(map(str, p)) if isinstance(p, list) else str(p)


class AuthenticationMiddleware:
    """vLLM's: /v1 paths need one of the API keys as a bearer token."""

    def __init__(self, app: ASGIApp, tokens: list[str]) -> None:
        self.app = app
        self.api_tokens = [hashlib.sha256(t.encode("utf-8")).digest() for t in tokens]

    def verify_token(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, param = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        param_hash = hashlib.sha256(param.encode("utf-8")).digest()
        match = False
        for token_hash in self.api_tokens:
            match |= secrets.compare_digest(param_hash, token_hash)
        return match

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", "")).removeprefix(str(scope.get("root_path", "")))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if path.startswith("/v1") and not self.verify_token(headers.get("authorization")):
            await JSONResponse(content={"error": "Unauthorized"}, status_code=401)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def make_app(state: State, api_keys: list[str] | None = None) -> ASGIApp:
    async def health(_: Request) -> Response:
        return Response(status_code=200 if state.ready else 503)

    async def models(_: Request) -> Response:
        if not state.ready:
            return error(503, "model is loading", "ServiceUnavailableError")
        entry = {
            "id": state.served_name, "object": "model", "created": state.created, "owned_by": "vllm",
            "root": state.model, "parent": None, "max_model_len": state.max_model_len,
            "permission": [{"id": f"modelperm-{uuid.uuid4().hex}", "object": "model_permission",
                            "created": state.created, "allow_sampling": True, "allow_logprobs": True}],
        }  # fmt: skip
        return JSONResponse({"object": "list", "data": [entry]})

    async def metrics(_: Request) -> Response:
        labels = f'engine="0",model_name="{state.served_name}"'
        usage = min(1.0, state.running * 0.05)
        lines = [
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            f"vllm:num_requests_running{{{labels}}} {float(state.running)}",
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
            "# TYPE vllm:num_requests_waiting gauge",
            f"vllm:num_requests_waiting{{{labels}}} 0.0",
            "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.",
            "# TYPE vllm:gpu_cache_usage_perc gauge",
            f"vllm:gpu_cache_usage_perc{{{labels}}} {usage}",
            "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
            "# TYPE vllm:kv_cache_usage_perc gauge",
            f"vllm:kv_cache_usage_perc{{{labels}}} {usage}",
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
            "# TYPE vllm:prompt_tokens_total counter",
            f"vllm:prompt_tokens_total{{{labels}}} {float(state.prompt_tokens)}",
            "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
            "# TYPE vllm:generation_tokens_total counter",
            f"vllm:generation_tokens_total{{{labels}}} {float(state.generation_tokens)}",
            "# HELP vllm:request_success_total Count of successfully processed requests.",
            "# TYPE vllm:request_success_total counter",
        ]
        lines += [
            f'vllm:request_success_total{{{labels},finished_reason="{r}"}} {float(n)}'
            for r, n in state.success.items()
        ]
        lines += state.ttft.render("vllm:time_to_first_token_seconds", labels)
        lines += state.e2e.render("vllm:e2e_request_latency_seconds", labels)
        return PlainTextResponse(
            "\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def generate(request: Request) -> Response:
        chat = request.url.path.endswith("/chat/completions")
        if not state.ready:
            return error(503, "model is loading", "ServiceUnavailableError")
        try:
            body = await request.json()
        except ValueError:
            return error(400, "request body is not valid JSON")
        if body.get("model") != state.served_name:
            return error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError", "model")
        n_prompt = count_tokens(prompt_text(body))
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 16
        if n_prompt + max_tokens > state.max_model_len:
            return error(
                400,
                f"This model's maximum context length is {state.max_model_len} tokens. However, you requested "
                f"{n_prompt + max_tokens} tokens ({n_prompt} in the messages, {max_tokens} in the completion). "
                "Please reduce the length of the messages or completion.",
                param="max_tokens",
            )
        stop_at = 12 if not body.get("ignore_eos") else max_tokens  # "EOS" after 12 words
        n_out = min(max_tokens, stop_at)
        finish = "length" if n_out == max_tokens else "stop"
        words = [WORDS[(n_prompt + i) % len(WORDS)] for i in range(n_out)]
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        obj = "chat.completion" if chat else "text_completion"
        usage = {"prompt_tokens": n_prompt, "completion_tokens": n_out, "total_tokens": n_prompt + n_out}
        started = time.monotonic()
        if not body.get("stream"):
            state.running += 1
            try:
                await asyncio.sleep(state.token_delay_s * n_out)
            finally:
                state.running -= 1
            account(state, n_prompt, n_out, finish, started, started + state.token_delay_s)
            text = " ".join(words)
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
            choice |= {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
            return JSONResponse(
                {
                    "id": rid,
                    "object": obj,
                    "created": int(time.time()),
                    "model": state.served_name,
                    "choices": [choice],
                    "usage": usage,
                }  # fmt: skip
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            stream(
                state,
                chat=chat,
                rid=rid,
                words=words,
                finish=finish,
                usage=usage if include_usage else None,
                n_prompt=n_prompt,
            ),  # fmt: skip
            media_type="text/event-stream",
        )

    async def embeddings(request: Request) -> Response:
        if not state.ready:
            return error(503, "model is loading", "ServiceUnavailableError")
        body = await request.json()
        if body.get("model") != state.served_name:
            return error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError", "model")
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data, n_tokens = [], 0
        for i, item in enumerate(items):
            text = str(item)
            n_tokens += count_tokens(text)
            data.append(
                {"index": i, "object": "embedding", "embedding": fake_embedding(text, state.embed_dim)}
            )
        state.prompt_tokens += n_tokens
        return JSONResponse(
            {
                "id": f"embd-{uuid.uuid4().hex}",
                "object": "list",
                "created": int(time.time()),
                "model": state.served_name,
                "data": data,
                "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
            }  # fmt: skip
        )

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/models", models),
            Route("/metrics", metrics),
            Route("/v1/completions", generate, methods=["POST"]),
            Route("/v1/chat/completions", generate, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
        ]
    )
    tokens = [k for k in (api_keys or []) if k]
    return AuthenticationMiddleware(app, tokens) if tokens else app


def account(state: State, n_prompt: int, n_out: int, finish: str, started: float, first: float) -> None:
    state.prompt_tokens += n_prompt
    state.generation_tokens += n_out
    state.success[finish] = state.success.get(finish, 0) + 1
    state.ttft.observe(first - started)
    state.e2e.observe(time.monotonic() - started)


async def stream(
    state: State,
    *,
    chat: bool,
    rid: str,
    words: list[str],
    finish: str,
    usage: dict[str, int] | None,
    n_prompt: int,
) -> AsyncIterator[bytes]:
    obj = "chat.completion.chunk" if chat else "text_completion"
    created = int(time.time())
    started = time.monotonic()
    first = started

    def chunk(choices: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> bytes:
        payload = {
            "id": rid,
            "object": obj,
            "created": created,
            "model": state.served_name,
            "choices": choices,
        }
        if usage is not None:
            payload["usage"] = None  # vLLM sends usage: null on content chunks when include_usage is on
        payload |= extra or {}
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    state.running += 1
    try:
        if chat:
            yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                          "finish_reason": None}])  # fmt: skip
        for i, word in enumerate(words):
            await asyncio.sleep(state.token_delay_s)
            if i == 0:
                first = time.monotonic()
            piece = word if i == 0 else " " + word
            last = i == len(words) - 1
            reason = finish if last else None
            if chat:
                yield chunk(
                    [{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": reason}]
                )
            else:
                yield chunk([{"index": 0, "text": piece, "logprobs": None, "finish_reason": reason}])
        if usage is not None:
            yield chunk([], {"usage": usage})
        yield b"data: [DONE]\n\n"
    finally:
        state.running -= 1
        account(state, n_prompt, len(words), finish, started, first)


def fake_embedding(text: str, dim: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(dim)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="vllm serve (VllmTestDouble)")
    p.add_argument("model")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", nargs="+", default=None)
    p.add_argument("--max-model-len", type=int, default=None)
    p.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    p.add_argument("--pipeline-parallel-size", "-pp", type=int, default=1)
    p.add_argument("--api-key", nargs="+", default=None)
    args, unknown = p.parse_known_args(argv)
    args.ignored = unknown
    return args


def model_max_len(model: Path) -> int | None:
    try:
        config = json.loads((model / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings")
    return int(value) if isinstance(value, int) else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    log(
        "WARNING", "this is VllmTestDouble, a test stand-in for vLLM: it generates filler text, not a model's"
    )
    log("INFO", f"vLLM API server version 0.33.0 (test double); args: {vars(args)}")
    model = Path(args.model)
    if not model.is_dir():
        print(f"ValueError: Invalid repository ID or local directory specified: '{args.model}'.", flush=True)
        return 1
    gpus = int(os.environ.get("VLLM_TEST_DOUBLE_GPUS", "1"))
    world = args.tensor_parallel_size * args.pipeline_parallel_size
    if world > gpus:
        print(
            f"ValueError: World size ({world}) is larger than the number of available GPUs ({gpus}) in this node. "
            "If this is intentional and you are using:\n- ray, set '--distributed-executor-backend ray'.",
            flush=True,
        )
        return 1
    derived = model_max_len(model)
    if args.max_model_len is not None and derived is not None and args.max_model_len > derived:
        print(
            f"pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig\n"
            f"  Value error, User-specified max_model_len ({args.max_model_len}) is greater than the derived "
            f"max_model_len (max_position_embeddings={derived} or model_max_length=None in model's config.json). "
            "To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1.",
            flush=True,
        )
        return 1
    served = (args.served_model_name or [args.model])[0]
    state = State(
        model=args.model,
        served_name=served,
        max_model_len=args.max_model_len or derived or 4096,
        load_s=float(os.environ.get("VLLM_TEST_DOUBLE_LOAD_S", "2")),
    )
    log("INFO", f"Starting vLLM API server 0 on http://{args.host}:{args.port}")
    api_keys = args.api_key or [os.environ.get("VLLM_API_KEY", "")]  # vLLM: args.api_key or envs.VLLM_API_KEY
    uvicorn.run(make_app(state, api_keys), host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
