"""The demo model for real: gemma3-270m under the process runtime answers a chat."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from cortexctl.core.settings import Settings
from cortexctl.engines.base import ProbeState
from cortexctl.engines.llamacpp.adapter import LlamaCppEngine
from cortexctl.runtimes.process import ProcessRuntime
from tests.support.engine_fixtures import free_tcp_port, make_recipe

pytestmark = [pytest.mark.llama, pytest.mark.slow]


async def test_gemma_chat(llama_settings: Settings, gemma_gguf: Path) -> None:
    engine = LlamaCppEngine()
    port = free_tcp_port()
    recipe = make_recipe(
        "llamacpp", str(gemma_gguf), served_name="gemma3-270m",
        args={"context_length": 2048, "parallel": 1, "chat_template": "gemma", "threads": 2},
    )  # fmt: skip
    # the shared model cache is an operator root here
    settings = llama_settings.model_copy(update={"model_roots": [gemma_gguf.parent]})
    spec = engine.launch_spec(recipe, model_id=20, replica_index=0, port=port, settings=settings)
    rt = ProcessRuntime(settings=llama_settings)
    handle = rt.start(spec)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient(timeout=60) as client:
            while (
                probe := await engine.probe(client, base, served_name="gemma3-270m")
            ).state != ProbeState.READY:
                assert time.monotonic() < deadline and rt.status(handle).alive, rt.logs(handle)
                await asyncio.sleep(0.2)
            assert probe.max_model_len == 2048
            # the named template is really applied (not the model's embedded one, not the name as text)
            applied = await client.post(
                f"{base}/apply-template", json={"messages": [{"role": "user", "content": "hi"}]}
            )
            assert applied.json()["prompt"] == "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
            r = await client.post(
                f"{base}/v1/chat/completions",
                json={
                    "model": "gemma3-270m",
                    "messages": [{"role": "user", "content": "What is the capital of France?"}],
                    "max_tokens": 8,
                    "temperature": 0,
                },
            )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["usage"]["prompt_tokens"] > 5 and body["usage"]["completion_tokens"] > 0
        assert body["choices"][0]["message"]["content"].strip()
    finally:
        rt.stop(handle, timeout_s=10)
