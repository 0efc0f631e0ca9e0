"""validate(): bad input becomes FAIL lines with a fix, never a traceback."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from cortexctl.core.errors import InvalidRequest
from cortexctl.core.settings import Settings
from cortexctl.recipes.schema import Recipe
from cortexctl.validation import GpuInfo, Status, ValidationFailed, print_report, validate
from cortexctl.validation.breakdown import GiB
from tests.validation.ggufmodels import Shape, write_gguf
from tests.validation.hfmodels import LLAMA_31_8B_INSTRUCT, dense_tensors, write_hf_folder

ONE_GPU = [GpuInfo(0, "NVIDIA L4", 24 * GiB, 23 * GiB, (8, 9))]


def recipe(
    engine: str, path: Path | str, *, gpus: Any = "none", sha256: str | None = None, **args: Any
) -> Recipe:
    model: dict[str, Any] = {"path": str(path)}
    if sha256:
        model["sha256"] = sha256
    return Recipe.model_validate(
        {
            "apiVersion": "cortex/v1",
            "kind": "Recipe",
            "metadata": {"name": "t"},
            "spec": {"engine": engine, "served_name": "t", "model": model, "gpus": gpus, "args": args},
        }
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The test models live beside the home: an operator-listed model root (model_roots).
    return Settings(home=tmp_path / "home", model_roots=[tmp_path])


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Path:
    return write_gguf(
        Shape("tiny", n_layer=2, n_embd=64, n_head=4, n_kv_head=2, n_ff=128, n_vocab=512),
        tmp_path / "tiny.gguf",
    )


@pytest.fixture
def llama8b(tmp_path: Path) -> Path:
    folder = tmp_path / "llama8b"
    write_hf_folder(folder, LLAMA_31_8B_INSTRUCT, dense_tensors(LLAMA_31_8B_INSTRUCT, "BF16"), shards=4)
    return folder


def by_name(report: Any, name: str) -> Any:
    return next(c for c in report.checks if c.name == name)


def assert_fail_with_fix(report: Any, name: str, *words: str) -> None:
    c = by_name(report, name)
    assert c.status == Status.FAIL, c
    assert c.fix, c
    for w in words:
        assert w in c.detail + c.fix, c
    assert not report.ok
    with pytest.raises(ValidationFailed) as exc:
        report.require_ok()
    assert exc.value.fix and exc.value.details["ok"] is False


def test_cpu_gguf_ok(settings: Settings, tiny_gguf: Path) -> None:
    sha = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    rep = validate(
        recipe("llamacpp", tiny_gguf, sha256=sha, context_length=1024),
        settings=settings,
        gpus=[],
        command=["llama-server", "-m", str(tiny_gguf)],
    )
    assert rep.ok, [c for c in rep.checks if c.status != Status.OK]
    assert by_name(rep, "model_file").detail.endswith("sha256 matches")
    assert rep.breakdown is not None and rep.breakdown.host_bytes > tiny_gguf.stat().st_size
    data = json.loads(rep.to_json())
    assert data["ok"] is True and data["command"][0] == "llama-server"
    assert {c["status"] for c in data["checks"]} == {"OK"}


def test_non_gguf_file(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_text("this is not a model")
    assert_fail_with_fix(
        validate(recipe("llamacpp", bad), settings=settings, gpus=[]), "model_readable", "GGUF"
    )


def test_truncated_gguf_header(settings: Settings, tiny_gguf: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[:200])  # ends inside the key/value section
    assert_fail_with_fix(
        validate(recipe("llamacpp", cut), settings=settings, gpus=[]), "model_readable", "truncated", "sha256"
    )


def test_truncated_gguf_data(settings: Settings, tiny_gguf: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[:-1000])  # header intact, last tensor cut short
    assert_fail_with_fix(
        validate(recipe("llamacpp", cut), settings=settings, gpus=[]), "model_readable", "truncated"
    )


def test_folder_without_config(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    rep = validate(recipe("vllm", folder, gpus=[0]), settings=settings, gpus=ONE_GPU)
    assert_fail_with_fix(rep, "model_readable", "config.json")


def test_missing_model(settings: Settings, tmp_path: Path) -> None:
    rep = validate(recipe("llamacpp", tmp_path / "nope.gguf"), settings=settings, gpus=[])
    assert_fail_with_fix(rep, "model_file", "bundle import")


def test_sha256_mismatch(settings: Settings, tiny_gguf: Path) -> None:
    rep = validate(recipe("llamacpp", tiny_gguf, sha256="0" * 64), settings=settings, gpus=[])
    assert_fail_with_fix(rep, "model_file", "sha256 mismatch")


def test_gpu3_on_one_gpu_host(settings: Settings, llama8b: Path) -> None:
    rep = validate(recipe("vllm", llama8b, gpus=[3]), settings=settings, gpus=ONE_GPU)
    assert_fail_with_fix(rep, "gpus_exist", "GPU 3", "[0]")


def test_fp8_on_pre_ada_profile(settings: Settings, llama8b: Path) -> None:
    rep = validate(
        recipe("vllm", llama8b, gpus=[0], quantization="fp8", max_model_len=4096),
        settings=settings,
        gpu_profile="t4-16g",
    )
    assert rep.pretend_gpus and rep.gpus[0].name == "Tesla T4"
    assert_fail_with_fix(rep, "gpu_capability_quant", "fp8", "8.9")
    # Ampere runs FP8 weight-only (Marlin): a warning, not a failure
    a100 = validate(
        recipe("vllm", llama8b, gpus=[0], quantization="fp8", max_model_len=4096),
        settings=settings,
        gpu_profile="a100-80g",
    )
    assert by_name(a100, "gpu_capability_quant").status == Status.WARN
    h100 = validate(
        recipe("vllm", llama8b, gpus=[0], quantization="fp8", max_model_len=4096),
        settings=settings,
        gpu_profile="h100-80g",
    )
    assert by_name(h100, "gpu_capability_quant").status == Status.OK
    assert h100.ok, h100.failures


def test_bf16_explicit_on_t4(settings: Settings, llama8b: Path) -> None:
    rep = validate(
        recipe("vllm", llama8b, gpus=[0], dtype="bfloat16", max_model_len=2048),
        settings=settings,
        gpu_profile="t4-16g",
    )
    assert_fail_with_fix(rep, "gpu_capability_dtype", "bfloat16", "half")


def test_8b_does_not_fit_24g_at_full_context(settings: Settings, llama8b: Path) -> None:
    rep = validate(recipe("vllm", llama8b, gpus=[0]), settings=settings, gpu_profile="l4-24g")
    assert_fail_with_fix(rep, "fits_gpu", "max_model_len")
    ok = validate(
        recipe("vllm", llama8b, gpus=[0], max_model_len=8192), settings=settings, gpu_profile="l4-24g"
    )
    assert by_name(ok, "fits_gpu").status == Status.OK


def test_vram_generic_gpu(settings: Settings, llama8b: Path) -> None:
    rep = validate(recipe("vllm", llama8b, gpus=[0], max_model_len=8192), settings=settings, vram="48GiB")
    assert rep.gpus[0].total_bytes == 48 * GiB
    assert by_name(rep, "gpu_capability").status == Status.WARN  # capability unknown
    assert by_name(rep, "fits_gpu").status == Status.OK


def test_unknown_profile_is_a_clear_error(settings: Settings, llama8b: Path) -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate(recipe("vllm", llama8b, gpus=[0]), settings=settings, gpu_profile="a200-999g")
    assert "h100-80g" in (exc.value.fix or "")


def test_tensor_parallel_rules(settings: Settings, llama8b: Path) -> None:
    bad = validate(
        recipe("vllm", llama8b, gpus=[0, 1, 2], tensor_parallel_size=3, max_model_len=4096),
        settings=settings,
        gpu_profile="3xa100-80g",
    )
    assert_fail_with_fix(bad, "tensor_parallel", "32 attention heads")
    too_many = validate(
        recipe("vllm", llama8b, gpus=[0], tensor_parallel_size=2, max_model_len=4096),
        settings=settings,
        gpu_profile="a100-80g",
    )
    assert_fail_with_fix(too_many, "tensor_parallel", "needs 2 GPUs")
    good = validate(
        recipe("vllm", llama8b, gpus=[0, 1], tensor_parallel_size=2, max_model_len=4096),
        settings=settings,
        gpu_profile="2xa100-80g",
    )
    assert by_name(good, "tensor_parallel").status == Status.OK


def test_context_beyond_model_max(settings: Settings, llama8b: Path) -> None:
    rep = validate(
        recipe("vllm", llama8b, gpus=[0], max_model_len=262144), settings=settings, gpu_profile="h200-141g"
    )
    assert_fail_with_fix(rep, "context_length", "131072")


def test_gpu_used_by_another_model(settings: Settings, llama8b: Path) -> None:
    rep = validate(
        recipe("vllm", llama8b, gpus=[0], max_model_len=4096),
        settings=settings,
        gpu_profile="h100-80g",
        used_gpus={0: "qwen-7b"},
    )
    assert_fail_with_fix(rep, "gpus_free", "qwen-7b")


def test_port_in_use(settings: Settings, tiny_gguf: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rep = validate(
            recipe("llamacpp", tiny_gguf, context_length=1024), settings=settings, gpus=[], port=port
        )
    assert_fail_with_fix(rep, "port", str(port))


def test_image_missing_for_docker(settings: Settings, tiny_gguf: Path) -> None:
    r = Recipe.model_validate(
        {
            "apiVersion": "cortex/v1",
            "kind": "Recipe",
            "metadata": {"name": "t"},
            "spec": {
                "engine": "llamacpp",
                "served_name": "t",
                "model": {"path": str(tiny_gguf)},
                "image": "cortex/llamacpp:0.3.36",
                "args": {"context_length": 1024},
            },
        }
    )
    rep = validate(r, settings=settings, gpus=[], runtime="docker", images=["cortex/vllm:0.11"])
    assert_fail_with_fix(rep, "image", "bundle import")


def test_hf_folder_for_llamacpp(settings: Settings, llama8b: Path) -> None:
    rep = validate(recipe("llamacpp", llama8b), settings=settings, gpus=[])
    assert_fail_with_fix(rep, "model_format", "GGUF")


def test_render_shows_failures_and_fixes(settings: Settings, llama8b: Path) -> None:
    rep = validate(
        recipe("vllm", llama8b, gpus=[3]),
        settings=settings,
        gpus=ONE_GPU,
        command=["vllm", "serve", str(llama8b)],
    )
    console = Console(record=True, width=200, color_system="truecolor")
    print_report(rep, console)
    text = console.export_text(clear=False)
    assert "FAIL" in text and "Select GPUs among [0]" in text and "vllm serve" in text
    assert "would not start" in text
    assert "\x1b[1;31m" in console.export_text(styles=True)  # FAIL in bold red


def test_quantized_v_cache_needs_flash_attn(settings: Settings, tiny_gguf: Path) -> None:
    rep = validate(
        recipe("llamacpp", tiny_gguf, context_length=1024, cache_type_v="q8_0", flash_attn="off"),
        settings=settings,
        gpus=[],
    )
    assert_fail_with_fix(rep, "llamacpp_flags", "flash_attn")


def test_command_drives_llamacpp_estimate(settings: Settings, tiny_gguf: Path) -> None:
    r = recipe("llamacpp", tiny_gguf, context_length=1024)
    plain = validate(r, settings=settings, gpus=[])
    cmd = validate(
        r, settings=settings, gpus=[], command=["llama-server", "-m", str(tiny_gguf), "-c", "8192"]
    )
    assert plain.breakdown is not None and cmd.breakdown is not None
    assert cmd.breakdown.get("kv_full") > plain.breakdown.get("kv_full")  # the argv's -c 8192 and auto -np 4
    assert (cmd.breakdown.facts["parallel"], cmd.breakdown.facts["kv_unified"]) == (4, True)


def test_gpus_override(settings: Settings, llama8b: Path) -> None:
    r = recipe("vllm", llama8b, gpus=[0], tensor_parallel_size=2, max_model_len=4096)
    rep = validate(r, settings=settings, gpu_profile="2xa100-80g", select_gpus="0,1")
    assert by_name(rep, "tensor_parallel").status == Status.OK
    with pytest.raises(InvalidRequest):
        validate(r, settings=settings, gpu_profile="a100-80g", select_gpus="zero")


def test_command_without_binary_name(settings: Settings, tiny_gguf: Path) -> None:
    """engines.llamacpp.llama_server_args returns the argv after the binary name."""
    r = recipe("llamacpp", tiny_gguf, context_length=1024)
    rep = validate(r, settings=settings, gpus=[], command=["-m", str(tiny_gguf), "-c", "4096", "-np", "2"])
    assert rep.breakdown is not None
    assert (rep.breakdown.facts["n_ctx"], rep.breakdown.facts["parallel"]) == (4096, 2)


def test_mla_model_with_different_k_and_v_cache_types_fails_as_llama_server_does(
    settings: Settings, tmp_path: Path, llama_server_bin: Path
) -> None:
    """The rule mirrors the engine: the real llama-server refuses the same flags."""
    import subprocess

    from tests.validation.fitmatrix import base_shape

    path = write_gguf(base_shape("deepseek2", "F16"), tmp_path / "mla.gguf")
    rep = validate(
        recipe("llamacpp", path, context_length=512, cache_type_k="q8_0", cache_type_v="f16"),
        settings=settings,
        gpus=[],
    )
    assert_fail_with_fix(rep, "llamacpp_flags", "cache_type_v: q8_0")
    same = validate(
        recipe("llamacpp", path, context_length=512, cache_type_k="q8_0", cache_type_v="q8_0"),
        settings=settings,
        gpus=[],
    )
    assert all(c.name != "llamacpp_flags" for c in same.checks)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [str(llama_server_bin), "-m", str(path), "--host", "127.0.0.1", "--port", str(port),
            "-c", "512", "-ctk", "q8_0", "-ctv", "f16", "-t", "1"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert "does not support different K (q8_0) and V (f16) cache types" in proc.stdout + proc.stderr
