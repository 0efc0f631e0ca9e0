"""The docker runtime against a real Docker Engine, with the locally built llama.cpp image
(scripts/build-engine-image.sh) and a tiny GGUF model."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cortexctl.core.errors import EngineError
from cortexctl.core.settings import Settings
from cortexctl.engines.base import LaunchSpec, Mount, ProbeState, new_engine_key
from cortexctl.engines.llamacpp.adapter import LlamaCppEngine
from cortexctl.runtimes.base import docker_runs_containers
from cortexctl.runtimes.docker import DockerRuntime
from tests.support.engine_fixtures import free_tcp_port, make_recipe, wait_until

pytestmark = [pytest.mark.docker]


def test_missing_image_is_a_clear_error(engine_settings: Settings, docker_client: Any) -> None:
    spec = LaunchSpec(
        name="llamacpp-model-990", engine="llamacpp", argv=[], container_argv=[],
        image="cortex/not-imported:0",
        env={}, host="127.0.0.1", port=1, mounts=(), gpus="none", memory_limit_bytes=None,
        labels={"cortex.managed": "true"}, log_file=engine_settings.logs_dir / "x.log",
    )  # fmt: skip
    with pytest.raises(EngineError, match="cortex/not-imported:0 is not present") as exc:
        DockerRuntime(settings=engine_settings).start(spec)
    assert exc.value.fix and "cortexctl bundle import" in exc.value.fix
    assert docker_client.images.list(name="cortex/not-imported") == []  # never pulled


async def _until_ready(
    engine: LlamaCppEngine, base: str, served: str, timeout_s: float, api_key: str | None = None
) -> ProbeState:
    deadline = time.monotonic() + timeout_s
    state = ProbeState.DOWN
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            state = (await engine.probe(client, base, served_name=served, api_key=api_key)).state
            if state == ProbeState.READY:
                break
            await asyncio.sleep(0.2)
    return state


@pytest.mark.slow
async def test_container_lifecycle(
    engine_settings: Settings, engine_image: str, tiny_model: str, docker_client: Any
) -> None:
    engine = LlamaCppEngine()
    port = free_tcp_port()
    recipe = make_recipe(
        "llamacpp", tiny_model, served_name="tiny-docker", image=engine_image, runtime="docker",
        resources={"memory": "1GiB"}, args={"context_length": 512},
    )  # fmt: skip
    model_id = 900 + port % 97
    key = new_engine_key()
    spec = engine.launch_spec(
        recipe, model_id=model_id, replica_index=0, port=port, settings=engine_settings, api_key=key
    )
    rt = DockerRuntime(settings=engine_settings)
    handle = rt.start(spec)
    try:
        assert handle.name == f"llamacpp-model-{model_id}" and handle.container_id and handle.api_key == key
        state = await _until_ready(
            engine, f"http://127.0.0.1:{port}", "tiny-docker", timeout_s=60, api_key=key
        )
        assert state == ProbeState.READY, rt.logs(handle)
        body = {"model": "tiny-docker", "prompt": "the cat", "max_tokens": 4, "temperature": 0, "seed": 42}
        url = f"http://127.0.0.1:{port}/v1/completions"
        assert (
            httpx.post(url, json=body, timeout=30).status_code == 401
        )  # the engine answers only the gateway
        r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] > 0

        attrs = docker_client.containers.get(handle.name).attrs
        assert attrs["HostConfig"]["NetworkMode"] == "host"
        assert attrs["HostConfig"]["Memory"] == 1024**3
        mounts = {m["Destination"]: m for m in attrs["Mounts"]}
        assert mounts["/models/tiny-llama.gguf"]["RW"] is False
        assert attrs["Config"]["Labels"]["cortex.served-name"] == "tiny-docker"

        adopted = DockerRuntime(settings=engine_settings).adopt()
        mine = [e for e in adopted if e.name == handle.name]
        assert len(mine) == 1 and mine[0].port == port and mine[0].container_id == handle.container_id
        assert mine[0].api_key == key  # a restarted daemon can still call the engine it adopts
        # the daemon's question before loading the docker SDK, asked over the Engine's API
        assert docker_runs_containers({"cortex.managed": "true", "cortex.model-id": str(model_id)})
        assert not docker_runs_containers({"cortex.managed": "true", "cortex.model-id": "not-ours"})
        assert rt.status(mine[0]).alive
        assert "server is listening" in rt.logs(mine[0]) or "listening" in rt.logs(mine[0])
    finally:
        rt.stop(handle, timeout_s=5)
    assert docker_client.containers.list(all=True, filters={"name": handle.name}) == []
    assert not docker_runs_containers({"cortex.managed": "true", "cortex.model-id": str(model_id)})
    assert not rt.status(handle).alive
    rt.stop(handle)  # idempotent


@pytest.mark.slow
def test_crashed_container_keeps_logs_for_diagnosis(
    engine_settings: Settings, engine_image: str, tmp_path: Path
) -> None:
    bad = engine_settings.models_dir / "notes.gguf"
    bad.write_text("these are not weights\n" * 100)
    engine = LlamaCppEngine()
    recipe = make_recipe("llamacpp", "notes.gguf", image=engine_image)
    spec = engine.launch_spec(
        recipe, model_id=989, replica_index=1, port=free_tcp_port(), settings=engine_settings
    )
    rt = DockerRuntime(settings=engine_settings)
    handle = rt.start(spec)
    latest = handle
    try:
        assert wait_until(lambda: not rt.status(handle).alive, timeout_s=30)
        assert rt.status(handle).exit_code not in (None, 0)
        d = engine.diagnose(rt.logs(handle))
        assert d is not None and d.rule == "model-file-corrupt", rt.logs(handle)
        # starting again replaces the exited container of the same name
        latest = rt.start(spec)
        assert latest.container_id != handle.container_id
    finally:
        rt.stop(latest)
    assert all(e.name != spec.name for e in rt.adopt())


def test_missing_mount_source(engine_settings: Settings, engine_image: str) -> None:
    spec = LlamaCppEngine().launch_spec(
        make_recipe("llamacpp", "absent.gguf", image=engine_image), model_id=988, replica_index=0, port=1,
        settings=engine_settings,
    )  # fmt: skip
    assert spec.mounts[0] == Mount(engine_settings.models_dir / "absent.gguf", "/models/absent.gguf")
    with pytest.raises(EngineError, match="does not exist"):
        DockerRuntime(settings=engine_settings).start(spec)


def test_gpus_without_nvidia_toolkit(
    engine_settings: Settings, engine_image: str, tiny_model: str, docker_client: Any
) -> None:
    # This host has no NVIDIA runtime: the device request fails at container start, for real.
    recipe = make_recipe("llamacpp", tiny_model, image=engine_image, gpus="all")
    spec = LlamaCppEngine().launch_spec(
        recipe, model_id=987, replica_index=0, port=free_tcp_port(), settings=engine_settings
    )
    with pytest.raises(EngineError, match="cannot give llamacpp-model-987 GPUs") as exc:
        DockerRuntime(settings=engine_settings).start(spec)
    assert exc.value.fix and "NVIDIA Container Toolkit" in exc.value.fix
    assert (
        docker_client.containers.list(all=True, filters={"name": "llamacpp-model-987"}) == []
    )  # nothing left


def test_device_requests() -> None:
    from cortexctl.runtimes.docker import _device_requests

    assert _device_requests("none") == []
    (everything,) = _device_requests("all")
    assert everything["Count"] == -1 and everything["Capabilities"] == [["gpu"]]
    (some,) = _device_requests((0, 2))
    assert some["DeviceIDs"] == ["0", "2"] and some["Capabilities"] == [["gpu"]]


def test_vllm_container_spec(engine_settings: Settings) -> None:
    from cortexctl.engines.vllm.adapter import VllmEngine
    from cortexctl.runtimes.docker import container_kwargs

    recipe = make_recipe(
        "vllm", "/srv/llama-8b", served_name="llama", gpus=[2, 3], resources={"memory": "64GiB"},
        args={"tensor_parallel_size": 2},
    )  # fmt: skip
    settings = engine_settings.model_copy(update={"model_roots": [Path("/srv")]})
    spec = VllmEngine().launch_spec(
        recipe, model_id=5, replica_index=0, port=18005, settings=settings, api_key="k-123"
    )
    kw = container_kwargs(spec)
    # the engine key: in the container's environment, named by a label for re-adoption, not in argv
    assert (
        kw["environment"]["VLLM_API_KEY"] == "k-123" and kw["labels"]["cortex.api-key-env"] == "VLLM_API_KEY"
    )
    assert "k-123" not in " ".join(kw["command"])
    assert kw["name"] == "vllm-model-5" and kw["network_mode"] == "host" and kw["ipc_mode"] == "host"
    assert kw["command"][:3] == ["/models/llama-8b", "--host", "127.0.0.1"]
    assert kw["device_requests"][0]["DeviceIDs"] == ["2", "3"]
    assert "CUDA_VISIBLE_DEVICES" not in kw["environment"] and kw["environment"]["HF_HUB_OFFLINE"] == "1"
    (mount,) = kw["mounts"]
    assert (mount["Source"], mount["Target"], mount["ReadOnly"]) == (
        "/srv/llama-8b",
        "/models/llama-8b",
        True,
    )
    assert kw["mem_limit"] == 64 * 1024**3
    assert kw["labels"]["cortex.managed"] == "true"
