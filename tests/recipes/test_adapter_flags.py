"""The engine adapters render only flags the pinned engine versions accept.

Runs where the engine adapters exist (cortexctl.engines); checks the command line
each builds, for every shipped recipe and for a recipe with every typed field set.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cortexctl.engines.llamacpp import adapter as llamacpp
from cortexctl.engines.llamacpp.args import LlamaCppArgs
from cortexctl.engines.vllm import adapter as vllm
from cortexctl.engines.vllm.args import VllmArgs
from cortexctl.recipes.extra_args import check_engine_argv, check_extra_args
from cortexctl.recipes.loader import load_recipe_files

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))

LLAMACPP_EVERY_FIELD = LlamaCppArgs(
    context_length=4096,
    parallel=2,
    gpu_layers="all",
    threads=2,
    batch_size=512,
    ubatch_size=128,
    cache_type_k="q8_0",
    cache_type_v="q8_0",
    flash_attn="on",
    chat_template="gemma",
    embeddings=True,
    pooling="mean",
    mlock=True,
)
VLLM_EVERY_FIELD = {
    "max_model_len": 8192,
    "tensor_parallel_size": 2,
    "pipeline_parallel_size": 2,
    "gpu_memory_utilization": 0.8,
    "max_num_seqs": 16,
    "max_num_batched_tokens": 4096,
    "dtype": "half",
    "quantization": "awq_marlin",
    "kv_cache_dtype": "fp8",
    "enforce_eager": True,
    "trust_remote_code": True,
    "chat_template": "/t/chat.jinja",
}


def test_check_engine_argv_accepts_owned_flags_but_not_unknown_ones() -> None:
    argv = ["--port", "1", "-c", "4096", "--mlock"]
    assert [p.index for p in check_extra_args("llamacpp", argv)] == [0, 2, 4]
    (problem,) = check_engine_argv("llamacpp", argv)
    assert problem.index == 4 and problem.problem.startswith("unknown flag --mlock")


def test_llamacpp_adapter_flags() -> None:
    cases = [r.spec.engine_args() for r in load_recipe_files(RECIPES) if r.spec.engine == "llamacpp"]
    for args in [*cases, LLAMACPP_EVERY_FIELD]:
        argv = llamacpp.llama_server_args(
            args, model="/m/x.gguf", port=18000, served_name="x", template_file=None
        )
        assert [str(p.problem) for p in check_engine_argv("llamacpp", argv)] == [], argv
    file_argv = llamacpp.llama_server_args(
        LlamaCppArgs(chat_template_file="t.jinja"),
        model="m",
        port=1,
        served_name="x",
        template_file="/t.jinja",
    )
    assert check_engine_argv("llamacpp", file_argv) == []


@pytest.mark.parametrize("task", [None, "generate", "embed", "classify", "score", "reward"])
@pytest.mark.parametrize("prefix_caching", [None, True, False])
def test_vllm_adapter_flags(task: str | None, prefix_caching: bool | None) -> None:
    args = VllmArgs(**VLLM_EVERY_FIELD, task=task, enable_prefix_caching=prefix_caching)  # type: ignore[arg-type]
    cases = [r.spec.engine_args() for r in load_recipe_files(RECIPES) if r.spec.engine == "vllm"]
    for case in [*cases, args]:
        argv = vllm.vllm_serve_args(case, model="/m/x", port=18000, served_name="x", template="/t/chat.jinja")
        assert argv[0] == "/m/x"  # the positional model; flags follow
        assert [str(p.problem) for p in check_engine_argv("vllm", argv[1:])] == [], argv
