from __future__ import annotations

from pathlib import Path

from cortexctl.core.settings import Settings
from cortexctl.engines.base import Mount
from cortexctl.engines.vllm.adapter import VllmEngine
from cortexctl.engines.vllm.pin import VERSION as VLLM_VERSION
from tests.support.engine_fixtures import make_recipe


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_llama31_8b_tensor_parallel(engine_settings: Settings, tmp_path: Path) -> None:
    fake = tmp_path / "vllm"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    settings = engine_settings.model_copy(update={"vllm_bin": fake})
    recipe = make_recipe(
        "vllm", "meta-llama/Llama-3.1-8B-Instruct", served_name="llama3.1-8b", gpus=[0, 1],
        args={"max_model_len": 16384, "tensor_parallel_size": 2, "gpu_memory_utilization": 0.85,
              "dtype": "bfloat16", "enable_prefix_caching": True, "max_num_seqs": 64},
    )  # fmt: skip
    spec = VllmEngine().launch_spec(recipe, model_id=4, replica_index=0, port=18004, settings=settings)
    model = settings.models_dir / "meta-llama/Llama-3.1-8B-Instruct"
    assert spec.argv[:3] == [str(fake), "serve", str(model)]
    assert spec.name == "vllm-model-4"
    assert (flag(spec.argv, "--host"), flag(spec.argv, "--port")) == ("127.0.0.1", "18004")
    assert flag(spec.argv, "--served-model-name") == "llama3.1-8b"
    assert flag(spec.argv, "--tensor-parallel-size") == "2"
    assert flag(spec.argv, "--max-model-len") == "16384"
    assert flag(spec.argv, "--gpu-memory-utilization") == "0.85"
    assert flag(spec.argv, "--dtype") == "bfloat16"
    assert flag(spec.argv, "--max-num-seqs") == "64"
    assert "--enable-prefix-caching" in spec.argv
    assert "--pipeline-parallel-size" not in spec.argv and "--quantization" not in spec.argv
    # container: entrypoint is `vllm serve`, model mounted read-only
    assert spec.container_argv[0] == "/models/Llama-3.1-8B-Instruct"
    assert spec.container_argv[1:] == spec.argv[3:]
    assert spec.mounts == (Mount(model, "/models/Llama-3.1-8B-Instruct", True),)
    assert spec.image == f"vllm/vllm-openai:v{VLLM_VERSION}"
    assert spec.gpus == (0, 1) and spec.env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert spec.env["HF_HUB_OFFLINE"] == "1" and spec.env["TRANSFORMERS_OFFLINE"] == "1"
    assert spec.labels["cortex.engine"] == "vllm" and spec.labels["cortex.model-id"] == "4"


def test_awq_and_embedding_recipes(engine_settings: Settings) -> None:
    awq = make_recipe(
        "vllm", "/data/qwen2.5-7b-awq", served_name="qwen2.5-7b", gpus="all",
        args={"quantization": "awq_marlin", "kv_cache_dtype": "fp8", "enforce_eager": True,
              "enable_prefix_caching": False, "chat_template": "/data/tpl.jinja",
              "extra_args": ["--seed", "1"]},
    )  # fmt: skip
    settings = engine_settings.model_copy(update={"model_roots": [Path("/data")]})  # an operator's root
    spec = VllmEngine().launch_spec(awq, model_id=5, replica_index=1, port=18005, settings=settings)
    assert spec.name == "vllm-model-5-1"
    assert flag(spec.argv, "--quantization") == "awq_marlin"
    assert flag(spec.argv, "--kv-cache-dtype") == "fp8"
    assert "--enforce-eager" in spec.argv and "--no-enable-prefix-caching" in spec.argv
    assert flag(spec.argv, "--chat-template") == "/data/tpl.jinja"
    assert flag(spec.container_argv, "--chat-template") == "/templates/tpl.jinja"
    assert spec.argv[-2:] == ["--seed", "1"]
    assert spec.gpus == "all" and "CUDA_VISIBLE_DEVICES" not in spec.env

    embed = make_recipe("vllm", "bge-m3", served_name="bge-m3", args={"task": "embed"})
    spec = VllmEngine().launch_spec(embed, model_id=6, replica_index=0, port=18006, settings=engine_settings)
    i = spec.argv.index("--runner")
    assert spec.argv[i : i + 4] == ["--runner", "pooling", "--convert", "embed"]
