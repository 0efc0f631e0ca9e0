# ruff: noqa: E501  (vLLM messages are reproduced whole)
"""VllmTestDouble: a stand-in for `vllm serve` on hosts without a GPU (tests only).

vLLM needs a GPU, so the tests run this program in its place. It is NOT vLLM and
NOT a model: the text it "generates" is deterministic filler.

Where it behaves like vLLM (the parts CORTEX depends on):
- the command line: every option the pinned vLLM accepts (the generated flag data,
  cortexctl/recipes/flags/vllm-<version>.json) is accepted and, beyond the few it uses,
  ignored; anything else is refused as vLLM's argparse does ("vllm serve: error:
  unrecognized arguments: …", exit 2);
- the port: bound at start but not listened on until the model "loaded", so clients get
  connection refused while loading (vLLM binds its socket before building the engine and
  serves only after); a port already taken fails with "[Errno 98] Address already in use";
- the log format: `(APIServer pid=N) INFO MM-DD HH:MM:SS [file.py:line] message` and
  `(EngineCore_DP0 pid=N) …`, errors as `ERROR … [core.py:866] ValueError: …` inside a
  traceback, followed by "Engine core initialization failed"; it logs `HF_HUB_OFFLINE is
  True, …` on offline starts and vLLM's memory lines (Model loading took / Available KV
  cache memory / GPU KV cache size / Maximum concurrency);
- the start-up memory check of vllm/v1/worker/utils.py `request_memory`: with
  VLLM_TEST_DOUBLE_GPU_LEDGER=DIR, each double reserves ceil(util × total) (+ a CUDA
  context) on the GPUs of CUDA_VISIBLE_DEVICES in DIR, and one that finds less free than
  its share exits with vLLM's "Free memory on device cuda:0 (…) on startup is less than
  desired GPU memory utilization (…)" — so replicas placed on the same GPU fail as on hardware;
- HTTP: `/health`, `/v1/models` (with `max_model_len`), `/metrics` (real `vllm:` metric
  names), `/v1/completions`, `/v1/chat/completions` (SSE, `stream_options.include_usage`),
  `/v1/embeddings`; API keys as vLLM's AuthenticationMiddleware (`--api-key`, else
  VLLM_API_KEY; /v1 paths need `Authorization: Bearer <key>`, else 401 `{"error": "Unauthorized"}`);
- failures with vLLM's messages: a model path that is not a folder, tp × pp above
  VLLM_TEST_DOUBLE_GPUS (default 1), --max-model-len above the config's maximum.

What it cannot model (verified only on a GPU host, scripts/gpu-check.sh): real memory use
(its memory lines are its own arithmetic from config.json and file sizes, not a profile),
CUDA/driver/NCCL errors, kernels and quantization support, tokenizers and chat templates
(it never loads them), generation quality or speed, and any flag's effect beyond parsing.

Environment: VLLM_TEST_DOUBLE_LOAD_S (simulated loading; default 2),
VLLM_TEST_DOUBLE_TOKEN_DELAY_S (per streamed token; default 0.005), VLLM_TEST_DOUBLE_GPUS
(default 1), VLLM_TEST_DOUBLE_EMBED_DIM (default 16), VLLM_TEST_DOUBLE_GPU_TOTAL_GIB
(CUDA total per GPU; default 79.19), VLLM_TEST_DOUBLE_GPU_LEDGER (see above).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import secrets
import socket
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


def log(level: str, msg: str, where: str = "api_server.py:1953", proc: str = "APIServer") -> None:
    """One line as vLLM V1 prints it: process prefix, level, date, [file:line], message."""
    stamp = time.strftime("%m-%d %H:%M:%S")
    print(f"({proc} pid={os.getpid()}) {level} {stamp} [{where}] {msg}", flush=True)


def engine_error(exc_line: str, frames: list[str]) -> None:
    """An EngineCore start failure laid out as vLLM prints it (traceback, then the API server's line)."""
    where = "core.py:866"
    log("ERROR", "EngineCore failed to start.", where, "EngineCore_DP0")
    log("ERROR", "Traceback (most recent call last):", where, "EngineCore_DP0")
    for frame in frames:
        log("ERROR", frame, where, "EngineCore_DP0")
    log("ERROR", exc_line, where, "EngineCore_DP0")
    print(
        f"(APIServer pid={os.getpid()}) RuntimeError: Engine core initialization failed. "
        "See root cause above. Failed core proc(s): {}",
        flush=True,
    )


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


def accepted_spellings() -> set[str]:
    """Every option spelling the pinned vLLM accepts, from the generated flag data."""
    flags_dir = Path(__file__).resolve().parents[2] / "cortexctl" / "engines" / "vllm" / "data"
    (data_file,) = flags_dir.glob("vllm-*.json")
    data = json.loads(data_file.read_text(encoding="utf-8"))
    return {n for o in data["options"] for n in o["names"]} | {"--help", "-h"}


def unrecognized(tokens: list[str], accepted: set[str]) -> list[str]:
    """What argparse would report: unknown options and the values that follow them."""
    out: list[str] = []
    skipping = False
    for token in tokens:
        if token.startswith("-") and not _is_number(token):
            name = token.split("=", 1)[0]
            if name.startswith("--"):
                name = "--" + name[2:].replace("_", "-")  # FlexibleArgumentParser takes --foo_bar
                name = name.split(".", 1)[0]  # --opt.key value for JSON-object options
            skipping = name not in accepted
        if skipping:
            out.append(token)
    return out


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="vllm serve (VllmTestDouble)")
    p.add_argument("model")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", nargs="+", default=None)
    p.add_argument("--max-model-len", type=int, default=None)
    p.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    p.add_argument("--pipeline-parallel-size", "-pp", type=int, default=1)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--api-key", nargs="+", default=None)
    args, unknown = p.parse_known_args(argv)
    args.ignored = unknown
    return args


def model_config(model: Path) -> dict[str, Any]:
    try:
        config = json.loads((model / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def model_max_len(model: Path) -> int | None:
    value = model_config(model).get("max_position_embeddings")
    return int(value) if isinstance(value, int) else None


GIB = 1024**3
CONTEXT_BYTES = 512 * 1024**2  # the double's stand-in for a CUDA context (outside vLLM's budget)


def reserve_gpu_memory(util: float) -> str | None:
    """vLLM's start check against a shared ledger of the doubles running; an error line or None."""
    ledger = os.environ.get("VLLM_TEST_DOUBLE_GPU_LEDGER")
    if not ledger:
        return None
    total = int(float(os.environ.get("VLLM_TEST_DOUBLE_GPU_TOTAL_GIB", "79.19")) * GIB)
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",") if d.strip()]
    root = Path(ledger)
    requested = math.ceil(total * util)
    for local, device in enumerate(visible):
        gpu_dir = root / f"gpu{device.strip()}"
        gpu_dir.mkdir(parents=True, exist_ok=True)
        used = 0
        for entry in gpu_dir.iterdir():
            try:
                os.kill(int(entry.name), 0)  # a reservation of a process that still runs
            except (ValueError, ProcessLookupError):
                continue
            except PermissionError:
                pass
            used += int(entry.read_text() or 0)
        free = max(0, total - used - CONTEXT_BYTES)  # our own context exists before the snapshot
        if free < requested:
            return (
                f"ValueError: Free memory on device cuda:{local} ({free / GIB:.2f}/{total / GIB:.2f} GiB) on startup "
                f"is less than desired GPU memory utilization ({util}, {requested / GIB:.2f} GiB). Decrease GPU "
                "memory utilization or reduce GPU memory used by other processes."
            )
    for device in visible:
        (root / f"gpu{device.strip()}" / str(os.getpid())).write_text(str(requested + CONTEXT_BYTES))
    return None


def memory_lines(model: Path, util: float, max_model_len: int) -> None:
    """vLLM's memory log lines, from the double's own arithmetic (config.json, file sizes): not a profile."""
    cfg = model_config(model)
    total = float(os.environ.get("VLLM_TEST_DOUBLE_GPU_TOTAL_GIB", "79.19")) * GIB
    weights = sum(f.stat().st_size for f in model.glob("*.safetensors"))
    layers = int(cfg.get("num_hidden_layers") or 1)
    heads = int(cfg.get("num_attention_heads") or 1)
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or int(cfg.get("hidden_size") or 64) // heads)
    per_token = layers * 2 * kv_heads * head_dim * 2
    available = max(0.0, math.ceil(total * util) - weights - 1 * GIB)
    tokens = int(available // per_token) // 16 * 16
    eng = "EngineCore_DP0"
    log(
        "INFO",
        f"Model loading took {weights / GIB:.2f} GiB memory and 0.010000 seconds",
        "gpu_model_runner.py:4130",
        eng,
    )
    log("INFO", f"Available KV cache memory: {available / GIB:.2f} GiB", "gpu_worker.py:356", eng)
    log("INFO", f"GPU KV cache size: {tokens:,} tokens", "kv_cache_utils.py:1307", eng)
    log(
        "INFO",
        f"Maximum concurrency for {max_model_len:,} tokens per request: {tokens / max_model_len:.2f}x",
        "kv_cache_utils.py:1312",
        eng,
    )


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    args = parse_args(raw)
    if bad := unrecognized(args.ignored, accepted_spellings()):
        print("usage: vllm serve [model_tag] [options]", flush=True)
        print(f"vllm serve: error: unrecognized arguments: {' '.join(bad)}", flush=True)
        return 2
    log(
        "WARNING", "this is VllmTestDouble, a test stand-in for vLLM: it generates filler text, not a model's"
    )
    log("INFO", "vLLM API server version 0.33.0 (test double)", "utils.py:233")
    log(
        "INFO",
        f"non-default args: {{'model': {args.model!r}, 'max_model_len': {args.max_model_len}}}",
        "utils.py:253",
    )
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        log(
            "INFO",
            f"HF_HUB_OFFLINE is True, replace model_id [{args.model}] to model_path [{args.model}]",
            "arg_utils.py:612",
        )
    try:
        # vLLM binds its socket before building the engine and listens only once it serves
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"(APIServer pid={os.getpid()}) OSError: [Errno {exc.errno}] {exc.strerror}", flush=True)
        return 1
    model = Path(args.model)
    if not model.is_dir():
        print(
            f"(APIServer pid={os.getpid()}) ValueError: Invalid repository ID or local directory specified: '{args.model}'.",
            flush=True,
        )
        return 1
    gpus = int(os.environ.get("VLLM_TEST_DOUBLE_GPUS", "1"))
    world = args.tensor_parallel_size * args.pipeline_parallel_size
    if world > gpus:
        print(
            f"(APIServer pid={os.getpid()}) ValueError: World size ({world}) is larger than the number of available GPUs ({gpus}) in this node. "
            "If this is intentional and you are using:\n- ray, set '--distributed-executor-backend ray'.",
            flush=True,
        )
        return 1
    derived = model_max_len(model)
    if args.max_model_len is not None and derived is not None and args.max_model_len > derived:
        print(
            f"(APIServer pid={os.getpid()}) pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig\n"
            f"  Value error, User-specified max_model_len ({args.max_model_len}) is greater than the derived "
            f"max_model_len (max_position_embeddings={derived} or model_max_length=None in model's config.json). "
            "To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1.",
            flush=True,
        )
        return 1
    if problem := reserve_gpu_memory(args.gpu_memory_utilization):
        engine_error(
            problem,
            [
                '  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/worker/gpu_worker.py", line 236, in init_device',
                "    self.requested_memory = request_memory(init_snapshot, self.cache_config)",
            ],
        )
        return 1
    served = (args.served_model_name or [args.model])[0]
    max_len = args.max_model_len or derived or 4096
    load_s = float(os.environ.get("VLLM_TEST_DOUBLE_LOAD_S", "2"))
    time.sleep(load_s)  # "loading": the port refuses connections meanwhile
    memory_lines(model, args.gpu_memory_utilization, max_len)
    state = State(model=args.model, served_name=served, max_model_len=max_len, load_s=0)
    log("INFO", f"Starting vLLM API server 0 on http://{args.host}:{args.port}", "launcher.py:46")
    api_keys = args.api_key or [os.environ.get("VLLM_API_KEY", "")]  # vLLM: args.api_key or envs.VLLM_API_KEY
    config = uvicorn.Config(make_app(state, api_keys), log_level="info", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
