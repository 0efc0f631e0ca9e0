"""vLLM under the real supervisor (real daemon, process runtime) with VllmTestDouble as `vllm`.

The double applies vLLM's start-up free-memory check across the doubles sharing a GPU
(VLLM_TEST_DOUBLE_GPU_LEDGER), so placement and the handling of that failure are exercised
end to end: replicas land on their own GPUs and both run; a model started on a GPU another
model already holds fails at once with the diagnosis and its fix, and is not retried.
There is no GPU here, so the starts are forced (the preflight would refuse: no NVML GPU).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cortexctl_cli import Cortexctl
from tests.support.engine_fixtures import VLLM_DOUBLE, wait_until

pytestmark = pytest.mark.slow

RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: {name}
spec:
  engine: vllm
  served_name: {name}
  model:
    path: tiny-hf
  runtime: process
  replicas: {replicas}
  gpus: {gpus}
  args:
    max_model_len: 4096
    gpu_memory_utilization: 0.9
  timeouts:
    load_s: 60
"""


@pytest.fixture
def daemon(cortexctl: Cortexctl, tmp_path: Path) -> Cortexctl:
    cortexctl.extra_env.update(
        CORTEX_VLLM_BIN=str(VLLM_DOUBLE),
        CORTEX_RUNTIME="process",
        CORTEX_HEALTH_POLL_INTERVAL_S="0.5",
        CORTEX_ENGINE_PORT_RANGE=json.dumps([31000 + os.getpid() % 400 * 2, 31999]),
        VLLM_TEST_DOUBLE_PYTHON=sys.executable,
        VLLM_TEST_DOUBLE_LOAD_S="1",
        VLLM_TEST_DOUBLE_GPUS="2",
        VLLM_TEST_DOUBLE_GPU_LEDGER=str(tmp_path / "gpu-ledger"),
    )
    folder = cortexctl.home / "models" / "tiny-hf"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(
        '{"architectures": ["LlamaForCausalLM"], "max_position_embeddings": 8192}'
    )
    cortexctl.run("up", check=True)
    return cortexctl


def _show(cli: Cortexctl, name: str) -> dict[str, Any]:
    token = (cli.home / "admin.token").read_text().strip()
    resp = httpx.get(
        f"http://127.0.0.1:{cli.port}/admin/models/{name}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _create(cli: Cortexctl, tmp_path: Path, name: str, *, replicas: int, gpus: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(RECIPE.format(name=name, replicas=replicas, gpus=gpus))
    cli.run("model", "create", "-f", str(path), check=True)


def test_replicas_on_own_gpus_run_and_a_taken_gpu_fails_without_retry(
    daemon: Cortexctl, tmp_path: Path
) -> None:
    _create(daemon, tmp_path, "pair", replicas=2, gpus="[0, 1]")
    daemon.run("model", "start", "pair", "--force", check=True)
    assert wait_until(lambda: _show(daemon, "pair")["state"] == "running", timeout_s=90, interval_s=0.5), (
        _show(daemon, "pair")
    )
    replicas = _show(daemon, "pair")["replicas"]
    assert len(replicas) == 2 and all(r["state"] == "running" for r in replicas), replicas

    # GPU 0 is held by replica 0 at 0.9: vLLM's start check refuses a second 0.9 share there
    _create(daemon, tmp_path, "late", replicas=1, gpus="[0]")
    daemon.run("model", "start", "late", "--force")
    assert wait_until(lambda: _show(daemon, "late")["state"] == "failed", timeout_s=60, interval_s=0.5), (
        _show(daemon, "late")
    )
    late = _show(daemon, "late")
    assert late["diagnosis"]["rule"] == "gpu-memory-in-use", late["diagnosis"]
    assert "gpu_memory_utilization" in late["diagnosis"]["fix"]
    assert late["replicas"] and all(r["restart_count"] == 0 for r in late["replicas"]), late[
        "replicas"
    ]  # not retried
    assert _show(daemon, "pair")["state"] == "running"
    daemon.run("model", "stop", "pair", check=True)
