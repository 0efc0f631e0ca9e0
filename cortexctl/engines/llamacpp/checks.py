"""llama.cpp's recipe and validation checks: what only llama-server's arguments need.

The shared checks (GPUs, typed flags against the flag data, files in the store) are
recipes/semantic.py's and validation/checks.py's; the registry hands these to them.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from cortexctl.engines.llamacpp.arch import flash_attn_allowed
from cortexctl.engines.llamacpp.args import LlamaCppArgs
from cortexctl.engines.llamacpp.pin import VERSION
from cortexctl.recipes.flags import flag_data
from cortexctl.recipes.paths import confine, outside_message
from cortexctl.recipes.schema import RecipeSpec
from cortexctl.recipes.semantic import ARGS, Finding, check_file, check_max_tokens
from cortexctl.validation.breakdown import Breakdown, fmt_bytes
from cortexctl.validation.checks import Check, fail, ok, warn
from cortexctl.validation.gpus import GpuInfo
from cortexctl.validation.modelinfo import ModelInfo

NAME = "llamacpp"
# With Jinja on (llama-server's default) llama.cpp 0.3.36 resolves only `chatml` of its
# built-in names; any other is read as the template's own text (measured: `--chat-template
# gemma` renders the prompt "gemma"). So the adapter puts `--no-jinja` before a named
# template, and extra_args must not switch Jinja on or off again.
JINJA_FLAGS = ("--jinja", "--no-jinja")


def llamacpp_args(spec: RecipeSpec) -> LlamaCppArgs:
    a = spec.engine_args()
    assert isinstance(a, LlamaCppArgs), "recipe engine is not llamacpp"
    return a


# ---- recipes ------------------------------------------------------------------------------


def check_recipe(spec: RecipeSpec, args: LlamaCppArgs, roots: Sequence[Path] | None) -> list[Finding]:
    """Cross-field problems of llama.cpp arguments (recipes/semantic.py runs the shared ones)."""
    out: list[Finding] = []
    if spec.gpus == "none" and args.gpu_layers not in (0,):
        out.append(
            (
                ARGS + ("gpu_layers",),
                "offloads layers to a GPU but spec.gpus is 'none': select GPUs or set gpu_layers: 0",
            )
        )
    if args.chat_template and args.chat_template_file:
        out.append((ARGS + ("chat_template_file",), "give chat_template or chat_template_file, not both"))
    if args.chat_template and "{" not in args.chat_template:
        builtin = flag_data(NAME).get("chat_templates", [])
        jinja = [i for i, a in enumerate(args.extra_args) if a in JINJA_FLAGS]
        for i in jinja:
            out.append(
                (
                    ARGS + ("extra_args", i),
                    f"{args.extra_args[i]}: CORTEX runs a named chat_template with --no-jinja "
                    "(llama.cpp reads built-in names only without Jinja); remove it",
                )
            )
        if args.chat_template not in builtin:
            close = difflib.get_close_matches(args.chat_template, builtin, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            out.append(
                (
                    ARGS + ("chat_template",),
                    f"{args.chat_template!r} is not a built-in template of llama.cpp "
                    f"{VERSION}"
                    f"{hint}; use one of `cortexctl recipe flags llamacpp --templates`, a Jinja template, "
                    "or chat_template_file",
                )
            )
    if args.jinja and args.chat_template and "{" not in args.chat_template and args.chat_template != "chatml":
        out.append(
            (
                ARGS + ("jinja",),
                "with Jinja on, llama.cpp knows only the built-in name 'chatml' (any other name is read as "
                "the template's own text): use chat_template: chatml or a Jinja chat_template_file",
            )
        )
    if args.chat_template_file:
        out += check_file(ARGS + ("chat_template_file",), args.chat_template_file, roots)
    if args.mmproj and roots is not None and confine(args.mmproj, roots) is None:
        out.append((ARGS + ("mmproj",), outside_message(args.mmproj, roots)))
    if args.cache_type_v not in ("f32", "f16", "bf16") and args.flash_attn == "off":
        out.append(
            (
                ARGS + ("cache_type_v",),
                "a quantized V cache needs flash attention: set flash_attn: on or auto",
            )
        )
    if args.mlock and "--load-mode" in args.extra_args:
        out.append(
            (
                ARGS + ("mlock",),
                "mlock is --load-mode mmap+mlock in this llama.cpp: drop --load-mode from extra_args",
            )
        )
    if args.pooling is not None and not args.embeddings:
        out.append((ARGS + ("pooling",), "pooling applies to embeddings: also set embeddings: true"))
    if args.parallel > args.context_length:
        out.append(
            (
                ARGS + ("parallel",),
                f"{args.parallel} slots cannot share a context of {args.context_length} tokens",
            )
        )
    per_slot = args.context_length // args.parallel
    out += check_max_tokens(spec, per_slot, "args.context_length / args.parallel (tokens per slot)")
    return out


# ---- validation ---------------------------------------------------------------------------


def check_model_format(spec: RecipeSpec, model: ModelInfo) -> Check:
    name = "model_format"
    if model.format != "gguf":
        return fail(
            name,
            "llamacpp needs a GGUF file but spec.model.path is an HF folder",
            "Convert it with llama.cpp's convert_hf_to_gguf.py, or use engine: vllm.",
        )
    return ok(name, f"{model.format} {model.architecture}, {model.n_params / 1e9:.2f} B parameters")


# llama-server aborts loading these with more than one slot: its warm-up splits the batch into
# equal sequences, which the relative-position bias input refuses (llama-graph.cpp,
# llm_graph_input_pos_bucket::set_input: GGML_ASSERT(!ubatch->equal_seqs())). Measured on t5encoder
# (tests/validation/fitmatrix.py NP_ABORTS); t5 shares the input but llama-server cannot run it at all.
ONE_SLOT_ONLY = ("t5encoder",)


def check_flags(args: LlamaCppArgs, model: ModelInfo | None = None) -> Check | None:
    if args.cache_type_v not in ("f32", "f16", "bf16") and args.flash_attn == "off":
        return fail(
            "llamacpp_flags",
            f"cache_type_v {args.cache_type_v} with flash_attn off: llama.cpp refuses a quantized V cache "
            "without flash attention",
            "Set flash_attn: auto (or on), or cache_type_v: f16.",
        )
    if (
        model is not None
        and args.cache_type_v not in ("f32", "f16", "bf16")
        and not flash_attn_allowed(model.architecture)
    ):
        # llama_init_from_model forces flash attention off for it, then refuses the V cache type
        return fail(
            "llamacpp_flags",
            f"{model.architecture}: llama.cpp turns flash attention off for this architecture, and "
            f"refuses a quantized V cache ({args.cache_type_v}) without it",
            "Set cache_type_v: f16.",
        )
    if model is not None and args.parallel > 1 and model.architecture in ONE_SLOT_ONLY:
        return fail(
            "llamacpp_flags",
            f"{model.architecture}: llama-server aborts loading it with {args.parallel} parallel slots "
            "(its relative-position bias refuses the equal-sequence batches that several slots make)",
            "Set parallel: 1.",
        )
    if model is not None and not model.v_cache and args.cache_type_k != args.cache_type_v:
        # llama_init_from_model: "model does not support different K and V cache types" (MLA
        # reads V from the K cache)
        return fail(
            "llamacpp_flags",
            f"{model.architecture} uses multi-head latent attention: llama.cpp refuses different K "
            f"({args.cache_type_k}) and V ({args.cache_type_v}) cache types for it",
            f"Set cache_type_v: {args.cache_type_k} (or both to f16).",
        )
    return None


def check_context(spec: RecipeSpec, model: ModelInfo, breakdown: Breakdown) -> Check:
    name = "context_length"
    limit = model.context_length
    per_slot = int(breakdown.facts.get("n_ctx_seq", 0))
    largs = llamacpp_args(spec)
    if limit and per_slot > limit:
        return warn(
            name,
            f"{per_slot} tokens per slot exceed the model's trained context {limit}; "
            "llama.cpp allows it but quality degrades past it",
            f"Set context_length ≤ {limit * largs.parallel} for {largs.parallel} slot(s).",
        )
    return ok(name, f"{per_slot} tokens per slot × {largs.parallel} slot(s) ≤ model maximum {limit}")


def check_fits_gpu(spec: RecipeSpec, breakdown: Breakdown, selected: list[GpuInfo]) -> list[Check]:
    return [_fits_gpu(breakdown, selected)] if breakdown.gpu_bytes else []


def _fits_gpu(b: Breakdown, selected: list[GpuInfo]) -> Check:
    name = "fits_gpu"
    need = b.gpu_bytes
    if not selected:
        return warn(
            name,
            f"gpu_layers offloads {fmt_bytes(need)} but no GPU is selected; it will run on CPU",
            "Select a GPU in spec.gpus or set gpu_layers: 0.",
        )
    free = sum(g.free_bytes for g in selected)
    where = ", ".join(str(g.index) for g in selected)
    detail = f"needs {fmt_bytes(need)} on GPU(s) {where}; {fmt_bytes(free)} free"
    if need > free:
        return fail(
            name,
            detail,
            "Lower gpu_layers (keep some layers on the host), context_length or parallel, "
            "or use a q8_0 KV cache (cache_type_k/v).",
        )
    return ok(name, detail)
