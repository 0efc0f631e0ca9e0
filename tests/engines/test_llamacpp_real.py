"""The real llama-server under the process runtime: readiness, an answer, and each
diagnosis rule that can be provoked for real."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from cortexctl.core.settings import Settings
from cortexctl.engines.base import Diagnosis, ProbeState
from cortexctl.engines.llamacpp.adapter import LlamaCppEngine
from cortexctl.runtimes.process import ProcessRuntime
from tests.support.engine_fixtures import free_tcp_port, make_recipe, wait_until
from tests.support.tiny_gguf import N_EMBD, N_HEAD, N_HEAD_KV, write_tiny_llama

pytestmark = [pytest.mark.llama]


async def probe_states(engine: LlamaCppEngine, base: str, served: str, timeout_s: float) -> list[Any]:
    seen: list[Any] = []
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            p = await engine.probe(client, base, served_name=served)
            if not seen or seen[-1].state != p.state:
                seen.append(p)
            if p.state == ProbeState.READY:
                break
            await asyncio.sleep(0.02)
    return seen


async def test_tiny_model_loads_and_answers(llama_settings: Settings, tiny_model: str) -> None:
    engine = LlamaCppEngine()
    port = free_tcp_port()
    recipe = make_recipe(
        "llamacpp", tiny_model, served_name="tiny", args={"context_length": 1024, "parallel": 2}
    )
    spec = engine.launch_spec(recipe, model_id=1, replica_index=0, port=port, settings=llama_settings)
    rt = ProcessRuntime(settings=llama_settings)
    handle = rt.start(spec)
    base = f"http://127.0.0.1:{port}"
    try:
        seen = await probe_states(engine, base, "tiny", timeout_s=60)
        assert seen[-1].state == ProbeState.READY, rt.logs(handle)
        assert all(p.state != ProbeState.READY for p in seen[:-1])
        assert seen[-1].max_model_len == 512  # per slot: 1024 / 2 parallel
        async with httpx.AsyncClient(timeout=30) as client:
            greedy = {"temperature": 0, "seed": 7}  # completion_tokens > 0 below: the same every run
            body = {"model": "tiny", "prompt": "the cat", "max_tokens": 5, **greedy}
            r = await client.post(f"{base}/v1/completions", json=body)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["usage"]["completion_tokens"] > 0 and isinstance(body["choices"][0]["text"], str)
            metrics = await client.get(f"{base}{engine.metrics_path}")
            assert metrics.status_code == 200 and "llamacpp:" in metrics.text
        assert engine.diagnose(rt.logs(handle, tail=1000)) is None  # a healthy start has no diagnosis
    finally:
        rt.stop(handle, timeout_s=10)
    assert not rt.status(handle).alive


async def test_probe_sees_loading_then_ready(llama_settings: Settings, tiny_model: str) -> None:
    # A 10^6-cell context makes llama.cpp spend ~0.5 s setting up its KV cache: long enough
    # to see /health answer 503. The model's training context is 2048, so slots are capped.
    engine = LlamaCppEngine()
    port = free_tcp_port()
    recipe = make_recipe(
        "llamacpp", tiny_model, served_name="tiny",
        args={"context_length": 1_000_000, "parallel": 2, "extra_args": ["--fit", "off"]},
    )  # fmt: skip
    spec = engine.launch_spec(recipe, model_id=3, replica_index=0, port=port, settings=llama_settings)
    rt = ProcessRuntime(settings=llama_settings)
    handle = rt.start(spec)
    try:
        seen = await probe_states(engine, f"http://127.0.0.1:{port}", "tiny", timeout_s=60)
        states = [p.state for p in seen]
        assert states[-1] == ProbeState.READY, rt.logs(handle)
        assert ProbeState.LOADING in states, states
        assert states.index(ProbeState.LOADING) < states.index(ProbeState.READY)
        assert seen[-1].max_model_len == 2048
        d = engine.diagnose(rt.logs(handle))
        assert d is not None and d.rule == "context-too-large"  # a warning worth showing
    finally:
        rt.stop(handle, timeout_s=10)


def run_to_failure(
    settings: Settings, model: str, *, port: int | None = None, **args: Any
) -> tuple[Diagnosis | None, str]:
    engine = LlamaCppEngine()
    recipe = make_recipe("llamacpp", model, args=args)
    spec = engine.launch_spec(
        recipe, model_id=2, replica_index=0, port=port or free_tcp_port(), settings=settings
    )
    rt = ProcessRuntime(settings=settings)
    handle = rt.start(spec)
    try:
        exited = wait_until(lambda: not rt.status(handle).alive, timeout_s=60)
        log = rt.logs(handle, tail=2000)
        assert exited, f"llama-server did not fail:\n{log}"
        assert rt.status(handle).exit_code != 0
    finally:
        rt.stop(handle, timeout_s=5)
    return engine.diagnose(log), log


def test_missing_model_file(llama_settings: Settings) -> None:
    d, log = run_to_failure(llama_settings, "nowhere/absent.gguf")
    assert d is not None and d.rule == "model-file-missing", log
    assert any("absent.gguf" in line for line in d.log_lines)


def test_not_a_gguf_file(llama_settings: Settings) -> None:
    (llama_settings.models_dir / "readme.gguf").write_text("# not a model\n" * 200)
    d, log = run_to_failure(llama_settings, "readme.gguf")
    assert d is not None and d.rule == "model-file-corrupt", log


def test_truncated_gguf(llama_settings: Settings, tiny_gguf_file: Path) -> None:
    (llama_settings.models_dir / "cut.gguf").write_bytes(tiny_gguf_file.read_bytes()[:50_000])
    d, log = run_to_failure(llama_settings, "cut.gguf")
    assert d is not None and d.rule == "model-file-corrupt", log


def test_unsupported_architecture(llama_settings: Settings) -> None:
    write_tiny_llama(llama_settings.models_dir / "alien.gguf", arch="alien9000")
    d, log = run_to_failure(llama_settings, "alien.gguf")
    assert d is not None and d.rule == "unsupported-architecture", log


def test_port_already_taken(llama_settings: Settings, tiny_model: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        d, log = run_to_failure(llama_settings, tiny_model, port=holder.getsockname()[1])
    assert d is not None and d.rule == "port-in-use", log


def test_unknown_flag(llama_settings: Settings, tiny_model: str) -> None:
    d, log = run_to_failure(llama_settings, tiny_model, extra_args=["--no-such-flag", "1"])
    assert d is not None and d.rule == "unknown-argument", log
    assert any("--no-such-flag" in line for line in d.log_lines)


def test_absurd_context_runs_out_of_memory(llama_settings: Settings) -> None:
    # A deep tiny model has a big KV cache per context cell, so a context that needs twice
    # this host's RAM + swap is only a few million cells (llama.cpp's per-cell bookkeeping
    # makes 10^8 cells slow). --fit off: do not let llama.cpp shrink the context to fit.
    layers = 32
    write_tiny_llama(llama_settings.models_dir / "deep.gguf", n_layer=layers)
    bytes_per_cell = layers * 2 * (N_HEAD_KV * N_EMBD // N_HEAD) * 4  # K and V, f32
    memory = psutil.virtual_memory().total + psutil.swap_memory().total
    context = 2 * memory // bytes_per_cell
    d, log = run_to_failure(
        llama_settings, "deep.gguf", context_length=context, cache_type_k="f32", cache_type_v="f32",
        extra_args=["--fit", "off"],
    )  # fmt: skip
    assert d is not None and d.rule == "oom-host", log
    assert any("failed to allocate" in line for line in d.log_lines)
