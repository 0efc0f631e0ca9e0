"""The vLLM adapter end to end through the process runtime, with VllmTestDouble as `vllm`
(vLLM itself needs a GPU)."""

from __future__ import annotations

import httpx
import pytest

from cortexctl.core.settings import Settings
from cortexctl.engines.base import ProbeState, new_engine_key
from cortexctl.engines.vllm.adapter import VllmEngine
from cortexctl.runtimes.process import ProcessRuntime
from tests.support.engine_fixtures import free_tcp_port, make_recipe, wait_until


async def probe_until_ready(
    engine: VllmEngine, base_url: str, served: str, timeout_s: float, api_key: str | None = None
) -> list[ProbeState]:
    import asyncio
    import time

    seen: list[ProbeState] = []
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            p = await engine.probe(client, base_url, served_name=served, api_key=api_key)
            if not seen or seen[-1] != p.state:
                seen.append(p.state)
            if p.state == ProbeState.READY:
                return seen
            await asyncio.sleep(0.1)
    return seen


@pytest.mark.slow
async def test_vllm_double_through_process_runtime(vllm_settings: Settings, hf_model_dir: str) -> None:
    engine = VllmEngine()
    port = free_tcp_port()
    recipe = make_recipe("vllm", hf_model_dir, served_name="llama-tiny", args={"max_model_len": 4096})
    key = new_engine_key()
    spec = engine.launch_spec(
        recipe, model_id=11, replica_index=0, port=port, settings=vllm_settings, api_key=key
    )
    rt = ProcessRuntime(settings=vllm_settings)
    handle = rt.start(spec)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            first = await engine.probe(client, base, served_name="llama-tiny", api_key=key)
        assert first.state in (ProbeState.DOWN, ProbeState.LOADING)
        seen = await probe_until_ready(engine, base, "llama-tiny", timeout_s=30, api_key=key)
        assert seen[-1] == ProbeState.READY, rt.logs(handle)
        assert ProbeState.LOADING in seen  # 503 while "loading"
        async with httpx.AsyncClient(timeout=5) as client:
            ready = await engine.probe(client, base, served_name="llama-tiny", api_key=key)
            assert ready.max_model_len == 4096
            keyless = await engine.probe(client, base, served_name="llama-tiny")
            assert keyless.state != ProbeState.READY  # /v1/models answers 401 without the engine key
            wrong = await engine.probe(client, base, served_name="other-name", api_key=key)
            assert wrong.state == ProbeState.LOADING and "does not list" in wrong.detail
            body = {"model": "llama-tiny", "prompt": "hi", "max_tokens": 3}
            direct = await client.post(f"{base}/v1/completions", json=body)
            assert direct.status_code == 401 and direct.json() == {"error": "Unauthorized"}
            r = await client.post(
                f"{base}/v1/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3
            metrics = (await client.get(f"{base}{engine.metrics_path}")).text
            assert 'vllm:generation_tokens_total{engine="0",model_name="llama-tiny"} 3.0' in metrics
        assert "VllmTestDouble" in rt.logs(handle)
    finally:
        rt.stop(handle, timeout_s=10)
    assert not rt.status(handle).alive


@pytest.mark.parametrize(
    ("args", "rule"),
    [
        ({"tensor_parallel_size": 4}, "tensor-parallel-exceeds-gpus"),
        ({"max_model_len": 100000}, "context-too-large"),
    ],
)
def test_vllm_double_startup_failures_are_diagnosed(
    vllm_settings: Settings, hf_model_dir: str, args: dict[str, int], rule: str
) -> None:
    engine = VllmEngine()
    recipe = make_recipe("vllm", hf_model_dir, args=args)
    spec = engine.launch_spec(
        recipe, model_id=12, replica_index=0, port=free_tcp_port(), settings=vllm_settings
    )
    rt = ProcessRuntime(settings=vllm_settings)
    handle = rt.start(spec)
    assert wait_until(lambda: not rt.status(handle).alive, timeout_s=20)
    assert rt.status(handle).exit_code == 1
    d = engine.diagnose(rt.logs(handle))
    assert d is not None and d.rule == rule, rt.logs(handle)
    rt.stop(handle)


def test_vllm_missing_model_folder(vllm_settings: Settings) -> None:
    engine = VllmEngine()
    spec = engine.launch_spec(
        make_recipe("vllm", "no-such-model"),
        model_id=13,
        replica_index=0,
        port=free_tcp_port(),
        settings=vllm_settings,
    )
    rt = ProcessRuntime(settings=vllm_settings)
    handle = rt.start(spec)
    assert wait_until(lambda: not rt.status(handle).alive, timeout_s=20)
    d = engine.diagnose(rt.logs(handle))
    assert d is not None and d.rule == "model-file-missing"
