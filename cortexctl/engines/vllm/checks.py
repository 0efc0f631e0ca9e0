"""vLLM's recipe and validation checks: what only `vllm serve`'s arguments need.

The shared checks (GPUs, typed flags against the flag data, files in the store) are
recipes/semantic.py's and validation/checks.py's; the registry hands these to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cortexctl.engines.vllm.args import VllmArgs
from cortexctl.engines.vllm.pin import VERSION
from cortexctl.recipes.schema import RecipeSpec
from cortexctl.recipes.semantic import ARGS, Finding, check_file, check_max_tokens
from cortexctl.validation.breakdown import Breakdown, fmt_bytes
from cortexctl.validation.checks import Check, fail, ok, warn
from cortexctl.validation.gpus import GpuInfo
from cortexctl.validation.modelinfo import ModelInfo


def vllm_args(spec: RecipeSpec) -> VllmArgs:
    a = spec.engine_args()
    assert isinstance(a, VllmArgs), "recipe engine is not vllm"
    return a


# ---- recipes ------------------------------------------------------------------------------


def check_recipe(spec: RecipeSpec, args: VllmArgs, roots: Sequence[Path] | None) -> list[Finding]:
    """Cross-field problems of vLLM arguments (recipes/semantic.py runs the shared ones)."""
    out: list[Finding] = []
    needed = args.tensor_parallel_size * args.pipeline_parallel_size
    if isinstance(spec.gpus, list) and spec.gpus:
        per = (
            "tensor_parallel_size × pipeline_parallel_size"
            if args.pipeline_parallel_size > 1
            else "tensor_parallel_size"
        )
        if len(spec.gpus) < needed:
            out.append(
                (
                    ARGS + ("tensor_parallel_size",),
                    f"{per} = {needed} needs {needed} GPUs but spec.gpus lists {len(spec.gpus)}",
                )
            )
        elif len(spec.gpus) < needed * spec.replicas:
            out.append(
                (
                    ("spec", "replicas"),
                    f"{spec.replicas} replicas × {needed} GPUs each need {needed * spec.replicas} GPUs "
                    f"but spec.gpus lists {len(spec.gpus)}",
                )
            )
    tag = _vllm_image_tag(spec.image)
    if tag is not None and tag.lstrip("v") != VERSION:
        out.append(
            (
                ("spec", "image"),
                f"CORTEX checks flags for vLLM {VERSION} but this image is {tag}; "
                f"use vllm/vllm-openai:v{VERSION} or leave image out",
            )
        )
    if args.chat_template and "{" not in args.chat_template:  # a path, not an inline Jinja template
        out += check_file(ARGS + ("chat_template",), args.chat_template, roots)
    if args.max_model_len is not None:
        out += check_max_tokens(spec, args.max_model_len, "args.max_model_len")
    return out


def _vllm_image_tag(image: str | None) -> str | None:
    """The tag of an official vLLM image (`vllm/vllm-openai:v0.33.0` → `v0.33.0`); None for others."""
    if not image:
        return None
    repo, _, tag = image.rpartition(":")
    if "/" in tag or not repo.split("/")[-1].startswith("vllm-openai") or tag == "latest":
        return None
    return tag


# ---- validation ---------------------------------------------------------------------------


def check_model_format(spec: RecipeSpec, model: ModelInfo) -> Check:
    name = "model_format"
    if model.format == "gguf":
        return warn(
            name,
            "vLLM's GGUF support is experimental and single-file only",
            "Prefer the HF safetensors checkpoint for vLLM, or use engine: llamacpp.",
        )
    return ok(name, f"{model.format} {model.architecture}, {model.n_params / 1e9:.2f} B parameters")


def check_tensor_parallel(model: ModelInfo, args: VllmArgs, n_selected: int) -> Check:
    name = "tensor_parallel"
    tp, pp = args.tensor_parallel_size, args.pipeline_parallel_size
    if model.n_heads % tp:
        divisors = [
            d for d in range(1, model.n_heads + 1) if model.n_heads % d == 0 and d <= max(n_selected, 1)
        ]
        return fail(
            name,
            f"tensor_parallel_size {tp} does not divide the {model.n_heads} attention heads",
            f"Use tensor_parallel_size in {divisors or [1]}.",
        )
    kv = max(model.n_kv_heads)
    if kv >= tp and kv % tp or kv < tp and tp % kv:
        return fail(
            name,
            f"tensor_parallel_size {tp} and the {kv} KV heads do not split evenly",
            "Use a tensor_parallel_size that divides (or is a multiple of) the KV heads.",
        )
    if tp * pp > n_selected:
        return fail(
            name,
            f"tensor_parallel_size {tp} × pipeline_parallel_size {pp} needs {tp * pp} GPUs, "
            f"{n_selected} selected",
            f"Select {tp * pp} GPUs in spec.gpus or lower tensor_parallel_size.",
        )
    if tp * pp < n_selected:
        return warn(
            name,
            f"{n_selected} GPUs selected but only {tp * pp} used (tp {tp} × pp {pp})",
            f"Set tensor_parallel_size: {n_selected} or select fewer GPUs.",
        )
    return ok(name, f"tp {tp} × pp {pp}: {model.n_heads} heads / {kv} KV heads split evenly")


def check_context(spec: RecipeSpec, model: ModelInfo, breakdown: Breakdown) -> Check:
    name = "context_length"
    limit = model.context_length
    scaled = f" (rope scaling from {model.original_context_length})" if model.original_context_length else ""
    args = vllm_args(spec)
    want = args.max_model_len or limit
    if limit and want > limit:
        return fail(
            name,
            f"max_model_len {want} exceeds the model's maximum {limit}{scaled}",
            f"Set max_model_len ≤ {limit}, or add rope scaling (e.g. YaRN) to the model's config.json.",
        )
    return ok(name, f"max_model_len {want} ≤ model maximum {limit}{scaled}")


def check_fits_gpu(spec: RecipeSpec, breakdown: Breakdown, selected: list[GpuInfo]) -> list[Check]:
    return _fits(vllm_args(spec), breakdown, selected)


def _fits(args: VllmArgs, b: Breakdown, selected: list[GpuInfo]) -> list[Check]:
    out: list[Check] = []
    if not selected:
        return out
    util = args.gpu_memory_utilization
    for g in selected:
        want = int(g.total_bytes * util)
        if g.free_bytes < want:
            out.append(
                fail(
                    f"fits_gpu{g.index}",
                    f"vLLM takes {util:.0%} of GPU {g.index}'s {fmt_bytes(g.total_bytes)} "
                    f"= {fmt_bytes(want)}, "
                    f"but only {fmt_bytes(g.free_bytes)} is free",
                    f"Lower gpu_memory_utilization to {max(0.05, g.free_bytes / g.total_bytes - 0.02):.2f} "
                    "or free the GPU.",
                )
            )
    kv = int(b.facts.get("kv_cache_bytes", 0))
    per_seq = int(b.facts["kv_bytes_max_model_len"])
    max_len = b.facts["max_model_len"]
    if kv <= 0:
        out.append(
            fail(
                "fits_gpu",
                f"weights + activations + overhead ({fmt_bytes(b.gpu_bytes)} per GPU) exceed "
                f"{util:.0%} of the GPU ({fmt_bytes(b.facts.get('vllm_budget', 0))})",
                "Use more GPUs (tensor_parallel_size), a quantized checkpoint (AWQ/GPTQ/FP8), "
                "or raise gpu_memory_utilization.",
            )
        )
    elif kv < per_seq:
        out.append(
            fail(
                "fits_gpu",
                f"KV cache {fmt_bytes(kv)} cannot hold one sequence of max_model_len {max_len} "
                f"({fmt_bytes(per_seq)}); vLLM refuses to start",
                f"Set max_model_len ≤ {b.facts['max_concurrent_tokens']} or raise gpu_memory_utilization / "
                "tensor_parallel_size, or use kv_cache_dtype: fp8.",
            )
        )
    else:
        out.append(
            ok(
                "fits_gpu",
                f"{fmt_bytes(b.gpu_bytes)} per GPU; KV cache {fmt_bytes(kv)} = "
                f"{b.facts['max_concurrent_tokens']} tokens, "
                f"{b.facts['max_concurrent_sequences_at_max_len']} × {max_len}-token sequences",
            )
        )
    return out
