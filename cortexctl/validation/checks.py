"""Pre-start checks. Each returns a Check: OK / WARN / FAIL, what was found, and the fix.

Checks take everything as arguments (model info, GPUs, the supervisor's view of which
GPUs other models hold), so the CLI, the admin route and the supervisor share them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cortexctl.core.daemon import port_owner
from cortexctl.core.errors import RecipeError
from cortexctl.recipes.placement import GpuTenant, colocation_fits, placement, replica_gpus, unused_gpus
from cortexctl.recipes.schema import LlamaCppArgs, RecipeSpec, VllmArgs
from cortexctl.validation.breakdown import Breakdown, fmt_bytes
from cortexctl.validation.estimate_vllm import outside_budget_bytes
from cortexctl.validation.gpus import GpuInfo, HostMemory
from cortexctl.validation.modelinfo import ModelInfo

HOST_RAM_WARN_FRACTION = 0.9


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str, fix: str | None = None) -> Check:
    return Check(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


def vllm_args(spec: RecipeSpec) -> VllmArgs:
    a = spec.engine_args()
    assert isinstance(a, VllmArgs), "recipe engine is not vllm"
    return a


def llamacpp_args(spec: RecipeSpec) -> LlamaCppArgs:
    a = spec.engine_args()
    assert isinstance(a, LlamaCppArgs), "recipe engine is not llamacpp"
    return a


# ---- GPU selection ---------------------------------------------------------------------


def selected_indices(spec: RecipeSpec, gpus: list[GpuInfo]) -> list[int]:
    if spec.gpus == "none":
        return []
    if spec.gpus == "all":
        return [g.index for g in gpus]
    return list(spec.gpus)


def check_gpus_exist(spec: RecipeSpec, gpus: list[GpuInfo]) -> Check:
    name = "gpus_exist"
    wanted = selected_indices(spec, gpus)
    if spec.engine == "vllm" and not wanted:
        return fail(
            name,
            "vLLM needs at least one GPU but the recipe selects none"
            + ("" if gpus else " and this host has no NVIDIA GPU"),
            "Set spec.gpus (e.g. [0]), or run the model with the llamacpp engine on CPU.",
        )
    if spec.gpus == "all" and not gpus:
        return fail(
            name,
            "spec.gpus is 'all' but no NVIDIA GPU was found (NVML)",
            "Install the NVIDIA driver, plan with --gpu-profile, or set spec.gpus: none.",
        )
    known = {g.index for g in gpus}
    missing = [i for i in wanted if i not in known]
    if missing:
        have = f"{len(gpus)} GPU(s): " + ", ".join(f"{g.index}={g.name}" for g in gpus) if gpus else "no GPU"
        return fail(
            name,
            f"GPU {', '.join(map(str, missing))} selected, but this host has {have}",
            f"Select GPUs among {sorted(known) or 'none'} in spec.gpus, "
            "or validate with --gpu-profile for another host.",
        )
    if not wanted:
        return ok(name, "CPU only (spec.gpus: none)")
    return ok(name, "selected: " + ", ".join(f"{i} ({_gpu(gpus, i).name})" for i in wanted))


# GPU index → who holds it: a name (holds it whole) or the tenants sharing it (placement.GpuTenant)
UsedGpus = Mapping[int, "str | Sequence[GpuTenant]"]


def gpus_per_replica(spec: RecipeSpec) -> int | None:
    """GPUs each replica needs of its own (vLLM: tp × pp); None: replicas see the whole list."""
    if spec.engine != "vllm":
        return None
    a = vllm_args(spec)
    return a.tensor_parallel_size * a.pipeline_parallel_size


def tenant_of(name: str, spec: RecipeSpec) -> GpuTenant:
    """This recipe's claim on each of its GPUs, for co-location."""
    if spec.engine != "vllm":
        return GpuTenant(name, None)
    a = vllm_args(spec)
    return GpuTenant(name, a.gpu_memory_utilization, outside_budget_bytes(a))


def check_placement(spec: RecipeSpec) -> list[Check]:
    name = "placement"
    per = gpus_per_replica(spec)
    try:
        sets = placement(spec, per_replica=per)
    except RecipeError as exc:
        return [fail(name, exc.message, exc.fix or "Fix spec.gpus / spec.replicas.")]
    if per is None or spec.replicas == 1 and isinstance(spec.gpus, str):
        listed = spec.gpus if isinstance(spec.gpus, str) else list(spec.gpus)
        return [ok(name, f"{spec.replicas} replica(s), each on GPUs {listed}")]
    out = [ok(name, "; ".join(f"replica {i}: GPU {','.join(map(str, g))}" for i, g in enumerate(sets)))]
    if extra := unused_gpus(spec, per_replica=per):
        out.append(
            warn(
                f"{name}_unused",
                f"GPU(s) {extra} are listed but no replica uses them ({spec.replicas} × {per})",
                "Drop them from spec.gpus, or raise spec.replicas.",
            )
        )
    return out


def check_gpus_not_used(
    spec: RecipeSpec,
    gpus: list[GpuInfo],
    used_gpus: UsedGpus,
    *,
    replica_index: int | None = None,
    name_of_model: str = "this model",
) -> Check:
    """The GPUs this recipe (or one replica of it) would use are free, or may be shared.

    Sharing follows placement.colocation_fits: every tenant reserves a known share and the
    shares plus each process's memory outside its share fit the GPU's CUDA total."""
    name = "gpus_free"
    mine = selected_indices(spec, gpus)
    if replica_index is not None:
        try:
            got = replica_gpus(spec, replica_index, per_replica=gpus_per_replica(spec))
            mine = [g.index for g in gpus] if got == "all" else [] if got == "none" else list(got)
        except RecipeError:
            pass  # check_placement reports it
    me = tenant_of(name_of_model, spec)
    shared: list[str] = []
    for i in mine:
        holder = used_gpus.get(i)
        if holder is None:
            continue
        if isinstance(holder, str):
            return fail(
                name,
                f"GPU {i} is already in use by {holder}",
                "Stop that model first, or select other GPUs in spec.gpus.",
            )
        gpu = next((g for g in gpus if g.index == i), None)
        total = gpu.cuda_total_bytes if gpu else 0
        verdict = colocation_fits(me, list(holder), total_bytes=total)
        if not verdict.fits:
            return fail(
                name,
                f"GPU {i} is shared with {', '.join(t.name for t in holder)} and the sum does not fit: "
                + verdict.detail,
                "Lower gpu_memory_utilization of the models sharing the GPU (the shares plus "
                "about 0.5 GiB each must fit), or select another GPU in spec.gpus.",
            )
        shared.append(f"GPU {i}: {verdict.detail}")
    if shared:
        return ok(name, "shared, fits: " + "; ".join(shared))
    return ok(name, "no other running model uses the selected GPUs")


def _gpu(gpus: list[GpuInfo], index: int) -> GpuInfo:
    return next(g for g in gpus if g.index == index)


# ---- memory fit -------------------------------------------------------------------------


def check_fits(spec: RecipeSpec, breakdown: Breakdown, gpus: list[GpuInfo], host: HostMemory) -> list[Check]:
    out: list[Check] = []
    indices = [i for i in selected_indices(spec, gpus) if i in {g.index for g in gpus}]
    selected = [_gpu(gpus, i) for i in indices]
    if spec.engine == "vllm":
        out.extend(_fits_vllm(vllm_args(spec), breakdown, selected))
    elif breakdown.gpu_bytes:
        out.append(_fits_llamacpp_gpu(breakdown, selected))
    host_need = breakdown.host_bytes
    if host_need:
        name = "fits_host_ram"
        detail = f"needs {fmt_bytes(host_need)} of host RAM; {fmt_bytes(host.available_bytes)} available"
        if host_need > host.available_bytes:
            out.append(
                fail(
                    name,
                    detail,
                    "Lower context_length/parallel, use a smaller quant (e.g. Q4_K_M), "
                    "or offload layers to a GPU with gpu_layers.",
                )
            )
        elif host_need > HOST_RAM_WARN_FRACTION * host.available_bytes:
            out.append(warn(name, detail + " (tight)", "Free memory or lower context_length."))
        else:
            out.append(ok(name, detail))
    return out


def _fits_llamacpp_gpu(b: Breakdown, selected: list[GpuInfo]) -> Check:
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


def _fits_vllm(args: VllmArgs, b: Breakdown, selected: list[GpuInfo]) -> list[Check]:
    out: list[Check] = []
    if not selected:
        return out
    util = args.gpu_memory_utilization
    outside = int(b.facts.get("outside_budget_bytes", 0))
    for g in selected:
        # vLLM's start check (vllm/v1/worker/utils.py request_memory): free ≥ ceil(util × CUDA
        # total), measured after its CUDA context and NCCL exist, so those must be free too.
        total = g.cuda_total_bytes
        want = math.ceil(total * util) + outside
        if g.free_bytes < want:
            room = (g.free_bytes - outside) / total if total else 0.0
            out.append(
                fail(
                    f"fits_gpu{g.index}",
                    f"vLLM takes {util:.0%} of GPU {g.index}'s {fmt_bytes(total)} (CUDA total) "
                    f"plus {fmt_bytes(outside)} of CUDA context/NCCL = {fmt_bytes(want)}, "
                    f"but only {fmt_bytes(g.free_bytes)} is free; vLLM would exit with "
                    '"Free memory on device … is less than desired GPU memory utilization"',
                    f"Lower gpu_memory_utilization to {max(0.05, room - 0.01):.2f} or free the GPU.",
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


# ---- parallelism and context ------------------------------------------------------------


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
    if spec.engine == "vllm":
        args = vllm_args(spec)
        want = args.max_model_len or limit
        if limit and want > limit:
            return fail(
                name,
                f"max_model_len {want} exceeds the model's maximum {limit}{scaled}",
                f"Set max_model_len ≤ {limit}, or add rope scaling (e.g. YaRN) to the model's config.json.",
            )
        return ok(name, f"max_model_len {want} ≤ model maximum {limit}{scaled}")
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


def check_llamacpp_flags(args: LlamaCppArgs) -> Check | None:
    if args.cache_type_v not in ("f32", "f16", "bf16") and args.flash_attn == "off":
        return fail(
            "llamacpp_flags",
            f"cache_type_v {args.cache_type_v} with flash_attn off: llama.cpp refuses a quantized V cache "
            "without flash attention",
            "Set flash_attn: auto (or on), or cache_type_v: f16.",
        )
    return None


def check_engine_format(spec: RecipeSpec, model: ModelInfo) -> Check:
    name = "model_format"
    if spec.engine == "llamacpp" and model.format != "gguf":
        return fail(
            name,
            "llamacpp needs a GGUF file but spec.model.path is an HF folder",
            "Convert it with llama.cpp's convert_hf_to_gguf.py, or use engine: vllm.",
        )
    if spec.engine == "vllm" and model.format == "gguf":
        return warn(
            name,
            "vLLM's GGUF support is experimental and single-file only",
            "Prefer the HF safetensors checkpoint for vLLM, or use engine: llamacpp.",
        )
    return ok(name, f"{model.format} {model.architecture}, {model.n_params / 1e9:.2f} B parameters")


# ---- files, ports, images ---------------------------------------------------------------

_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path, *, chunk: int = 8 * 1024 * 1024) -> str:
    """Streamed sha256, cached per (path, size, mtime) so repeated validations are free."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def check_model_file(path: Path, sha256: str | None, *, verify: bool = True) -> Check:
    name = "model_file"
    if not path.exists():
        return fail(
            name,
            f"{path} does not exist",
            "Import the model (cortexctl bundle import) or fix spec.model.path.",
        )
    if sha256 is None:
        return ok(name, f"{path} present (no sha256 in the recipe)")
    if path.is_dir():
        return warn(
            name,
            f"{path} is a folder; spec.model.sha256 applies to a single file",
            "Drop spec.model.sha256 for folders (bundles verify each file).",
        )
    if not verify:
        return ok(name, f"{path} present (sha256 not verified this time)")
    actual = sha256_file(path)
    if actual != sha256:
        return fail(
            name,
            f"sha256 mismatch for {path}: file {actual[:16]}…, recipe {sha256[:16]}…",
            "Re-copy the model file (it is damaged or a different version), or correct spec.model.sha256.",
        )
    return ok(name, f"{path} present, sha256 matches")


def check_port(port: int | None) -> Check | None:
    if port is None:
        return None
    owner = port_owner("127.0.0.1", port)  # SO_REUSEADDR: a TIME_WAIT leftover is not "in use"
    if owner is None:
        return ok("port", f"127.0.0.1:{port} is free")
    return fail(
        "port",
        f"127.0.0.1:{port} is already in use by {owner}",
        "Stop what listens there, or change engine_port_range in cortex.yaml.",
    )


def check_image(spec: RecipeSpec, runtime: str | None, images: Iterable[str] | None) -> Check | None:
    if runtime != "docker" or images is None:
        return None
    from cortexctl.engines.base import get_engine

    image = spec.image or get_engine(spec.engine).default_image  # what the docker runtime would run
    if image in set(images):
        return ok("image", f"{image} present")
    return fail(
        "image",
        f"image {image} is not present and this host is offline",
        "Import the bundle that carries it: cortexctl bundle import FILE.",
    )
