"""Checks across fields of a schema-valid recipe that need no hardware.

Each returns `(location, problem)` pairs; the loader turns them into
`file:line: field: problem`. Whether a model fits the GPUs is the validation
package's job, not this one.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from cortexctl.core.yamldoc import Loc
from cortexctl.recipes.extra_args import TYPED_FLAGS
from cortexctl.recipes.flags import VLLM_VERSION, accepted_flags, engine_version, flag_data
from cortexctl.recipes.schema import LlamaCppArgs, Recipe, RecipeSpec, VllmArgs

Finding = tuple[Loc, str]

ARGS: Loc = ("spec", "args")
# With Jinja on (llama-server's default) llama.cpp 0.3.36 resolves only `chatml` of its
# built-in names; any other is read as the template's own text (measured: `--chat-template
# gemma` renders the prompt "gemma"). So the adapter puts `--no-jinja` before a named
# template, and extra_args must not switch Jinja on or off again.
JINJA_FLAGS = ("--jinja", "--no-jinja")
MEMORY_PATTERN = re.compile(r"^\s*\d+(\.\d+)?\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)


def check_recipe(recipe: Recipe, *, base_dir: Path | None) -> list[Finding]:
    """Every cross-field problem of `recipe`; `base_dir` resolves relative template paths."""
    spec = recipe.spec
    out: list[Finding] = []
    out += _check_gpus(spec)
    out += _check_typed_flags(spec)
    args = spec.engine_args()
    if isinstance(args, LlamaCppArgs):
        out += _check_llamacpp(spec, args, base_dir)
    else:
        out += _check_vllm(spec, args, base_dir)
    if spec.resources.memory is not None and not MEMORY_PATTERN.match(spec.resources.memory):
        out.append(
            (
                ("spec", "resources", "memory"),
                f"{spec.resources.memory!r} is not a size; write e.g. 8GiB or 512m",
            )
        )
    return out


def _check_gpus(spec: RecipeSpec) -> list[Finding]:
    out: list[Finding] = []
    if spec.engine == "vllm" and spec.gpus == "none":
        out.append(
            (
                ("spec", "gpus"),
                "vLLM needs a GPU: set gpus to 'all' or a list of indices (or use engine llamacpp on CPU)",
            )
        )
    if isinstance(spec.gpus, list):
        if not spec.gpus:
            out.append((("spec", "gpus"), "an empty list selects no GPU; write gpus: none for CPU"))
        dupes = sorted({g for g in spec.gpus if spec.gpus.count(g) > 1})
        if dupes:
            out.append((("spec", "gpus"), f"GPU index listed twice: {', '.join(map(str, dupes))}"))
    return out


def _check_typed_flags(spec: RecipeSpec) -> list[Finding]:
    """Typed fields against the pinned engine: the flag must exist, its value be a choice."""
    args = spec.engine_args()
    set_fields = args.model_fields_set
    accepted = accepted_flags(spec.engine)
    version = f"{spec.engine} {engine_version(spec.engine)}"
    out: list[Finding] = []
    owners: dict[str, list[str]] = {}
    for flag, field in TYPED_FLAGS[spec.engine].items():
        owners.setdefault(field, []).append(flag)
    for field, flags in owners.items():
        if field not in set_fields:
            continue
        value = getattr(args, field)
        known = [f for f in flags if f in accepted]
        if not known:
            out.append((ARGS + (field,), f"{version} has no {' or '.join(flags)} flag; remove args.{field}"))
            continue
        info = accepted[known[0]]
        if (
            len(known) == 1
            and isinstance(value, str)
            and info.choices is not None
            and value not in info.choices
        ):
            close = difflib.get_close_matches(value, info.choices, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            out.append(
                (
                    ARGS + (field,),
                    f"{value!r} is not accepted by {version}{hint}; choose one of: {', '.join(info.choices)}",
                )
            )
    return out


def _check_llamacpp(spec: RecipeSpec, args: LlamaCppArgs, base_dir: Path | None) -> list[Finding]:
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
        builtin = flag_data("llamacpp").get("chat_templates", [])
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
                    f"{engine_version('llamacpp')}"
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
        out += _check_file(ARGS + ("chat_template_file",), args.chat_template_file, base_dir)
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
    out += _check_max_tokens(spec, per_slot, "args.context_length / args.parallel (tokens per slot)")
    return out


def _check_vllm(spec: RecipeSpec, args: VllmArgs, base_dir: Path | None) -> list[Finding]:
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
    if tag is not None and tag.lstrip("v") != VLLM_VERSION:
        out.append(
            (
                ("spec", "image"),
                f"CORTEX checks flags for vLLM {VLLM_VERSION} but this image is {tag}; "
                f"use vllm/vllm-openai:v{VLLM_VERSION} or leave image out",
            )
        )
    if args.chat_template and "{" not in args.chat_template:  # a path, not an inline Jinja template
        out += _check_file(ARGS + ("chat_template",), args.chat_template, base_dir)
    if args.max_model_len is not None:
        out += _check_max_tokens(spec, args.max_model_len, "args.max_model_len")
    return out


def _vllm_image_tag(image: str | None) -> str | None:
    """The tag of an official vLLM image (`vllm/vllm-openai:v0.33.0` → `v0.33.0`); None for others."""
    if not image:
        return None
    repo, _, tag = image.rpartition(":")
    if "/" in tag or not repo.split("/")[-1].startswith("vllm-openai") or tag == "latest":
        return None
    return tag


def _check_max_tokens(spec: RecipeSpec, limit: int, what: str) -> list[Finding]:
    max_tokens = spec.request_defaults.max_tokens
    if max_tokens is not None and max_tokens >= limit:
        return [
            (
                ("spec", "request_defaults", "max_tokens"),
                f"{max_tokens} leaves no room for the prompt: {what} is {limit}",
            )
        ]
    return []


def _check_file(loc: Loc, value: str, base_dir: Path | None) -> list[Finding]:
    path = Path(value).expanduser()
    if not path.is_absolute():
        if base_dir is None:
            return [
                (loc, f"relative path {value!r} needs the recipe's file to resolve; give an absolute path")
            ]
        path = base_dir / path
    if not path.is_file():
        return [(loc, f"file not found: {path} (relative paths are relative to the recipe file)")]
    return []
