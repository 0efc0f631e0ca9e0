"""VllmTestDouble behaves like vLLM where CORTEX depends on it (flags, port, memory check, logs).

These run the double as `vllm` through the process runtime with launch specs the adapter
renders; what the double cannot model is listed in its docstring (tests/doubles/vllm_test_double.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cortexctl.core.settings import Settings
from cortexctl.engines.vllm import VllmEngine
from cortexctl.runtimes.process import ProcessRuntime
from tests.support.engine_fixtures import VLLM_DOUBLE, free_tcp_port, make_recipe, wait_until

DOUBLE = Path(__file__).resolve().parents[1] / "doubles" / "vllm_test_double.py"


def run_double(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own test program
        [sys.executable, str(DOUBLE), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_unknown_flag_is_refused_as_vllm_does(hf_model_dir: str) -> None:
    done = run_double(hf_model_dir, "--port", str(free_tcp_port()), "--max-model-length", "4096")
    assert done.returncode == 2
    assert "vllm serve: error: unrecognized arguments: --max-model-length 4096" in done.stdout
    d = VllmEngine().diagnose(done.stdout)
    assert d is not None and d.rule == "unknown-argument"


def test_flags_of_the_pinned_vllm_are_accepted(
    engine_settings: Settings, hf_model_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_TEST_DOUBLE_GPUS", "0")  # stop right after parsing: the GPU-count error
    done = run_double(
        str(engine_settings.models_dir / hf_model_dir), "--port", str(free_tcp_port()),
        "--seed", "1", "--enable-chunked-prefill", "--max_num_seqs", "8",
        "--compilation-config.level", "3", "--no-enable-prefix-caching",
    )  # fmt: skip
    assert "unrecognized arguments" not in done.stdout
    assert "World size (1) is larger than the number of available GPUs (0)" in done.stdout


def _start(rt: ProcessRuntime, settings: Settings, recipe, model_id: int, replica: int):  # type: ignore[no-untyped-def]
    spec = VllmEngine().launch_spec(
        recipe, model_id=model_id, replica_index=replica, port=free_tcp_port(), settings=settings
    )
    return spec, rt.start(spec)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_replicas_on_their_own_gpus_start_and_a_shared_gpu_fails_like_vllm(
    vllm_settings: Settings, hf_model_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_TEST_DOUBLE_GPU_LEDGER", str(tmp_path / "ledger"))
    rt = ProcessRuntime(settings=vllm_settings)
    two = make_recipe(
        "vllm", hf_model_dir, served_name="pair", gpus=[0, 1], replicas=2, args={"max_model_len": 4096}
    )
    started = [_start(rt, vllm_settings, two, 21, i) for i in range(2)]
    try:
        assert [s.env["CUDA_VISIBLE_DEVICES"] for s, _ in started] == ["0", "1"]
        for spec, handle in started:
            assert wait_until(lambda p=spec.port: _ready(p), timeout_s=30), rt.logs(handle)
        # what every replica used to get: the whole list, so a second 0.9 share on GPU 0
        other = make_recipe("vllm", hf_model_dir, served_name="late", gpus=[0], args={"max_model_len": 4096})
        spec, handle = _start(rt, vllm_settings, other, 22, 0)
        assert wait_until(lambda: not rt.status(handle).alive, timeout_s=30)
        logs = rt.logs(handle)
        assert "on startup is less than desired GPU memory utilization (0.9" in logs
        d = VllmEngine().diagnose(logs)
        assert d is not None and d.rule == "gpu-memory-in-use"
        rt.stop(handle)
    finally:
        for _, handle in started:
            rt.stop(handle, timeout_s=10)


def test_log_lines_are_in_vllm_format_and_healthy_logs_give_no_diagnosis(
    vllm_settings: Settings, hf_model_dir: str
) -> None:
    rt = ProcessRuntime(settings=vllm_settings)
    spec, handle = _start(
        rt, vllm_settings, make_recipe("vllm", hf_model_dir, gpus=[0], args={"max_model_len": 4096}), 23, 0
    )
    try:
        assert wait_until(lambda: _ready(spec.port), timeout_s=30), rt.logs(handle)
        logs = rt.logs(handle)
        assert "(APIServer pid=" in logs and "] HF_HUB_OFFLINE is True, replace model_id [" in logs
        assert "(EngineCore_DP0 pid=" in logs and "Available KV cache memory:" in logs
        assert VllmEngine().diagnose(logs) is None  # HF_HUB_OFFLINE logged on a healthy start is no diagnosis
    finally:
        rt.stop(handle, timeout_s=10)


def test_double_executable_exists() -> None:
    assert VLLM_DOUBLE.is_file()
