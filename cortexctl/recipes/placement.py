"""Which GPUs each replica of a recipe gets, and when two models may share a GPU.

An engine that pre-allocates a share of each GPU it sees (vLLM takes
`gpu_memory_utilization × total` at start) cannot run two replicas on the same
GPUs: the second finds too little free memory and exits ("Free memory on device …
on startup is less than desired GPU memory utilization", vllm/v1/worker/utils.py
`request_memory`). So `spec.gpus` is split in order, `per_replica` GPUs each
(vLLM: tensor_parallel × pipeline_parallel): `replicas: 2, gpus: [0,1,2,3], tp: 2`
→ replica 0 on [0,1], replica 1 on [2,3]. Engines that share GPUs gracefully
(llama.cpp offloads a fixed number of layers) pass `per_replica=None` and every
replica sees the whole list, as before.

Co-location of different models on one GPU is allowed only for engines whose
claim is a known fraction of the GPU (vLLM), and only when the fractions plus
each process's memory outside that fraction (CUDA context, NCCL) fit the GPU's
CUDA total: vLLM checks free memory at start against its own fraction only, so a
second instance whose fraction fits "on paper" still fails if the first one's
context was forgotten. `colocation_fits` is that rule; validation applies it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cortexctl.core.errors import RecipeError
from cortexctl.recipes.schema import RecipeSpec

GpuSet = str | tuple[int, ...]  # "all" | "none" | indices
MiB = 1024**2
# Memory an engine process holds besides its share (estimates; scripts/gpu-check.sh measures them)
CUDA_CONTEXT_BYTES = 512 * MiB  # CUDA context + cuBLAS workspaces per process
NCCL_BYTES = 256 * MiB  # NCCL communicator buffers when a replica spans GPUs


def outside_share_bytes(gpus_per_replica: int) -> int:
    """What one process holds on each of its GPUs outside its reserved share."""
    return CUDA_CONTEXT_BYTES + (NCCL_BYTES if gpus_per_replica > 1 else 0)


def replica_gpus(spec: RecipeSpec, replica_index: int, *, per_replica: int | None) -> GpuSet:
    """The GPUs replica `replica_index` sees; RecipeError when spec.gpus cannot be split."""
    gpus = spec.gpus
    if per_replica is None or gpus == "none":
        return gpus if isinstance(gpus, str) else tuple(gpus)
    if gpus == "all":
        if spec.replicas == 1:
            return "all"
        raise RecipeError(
            f"spec.gpus: all with {spec.replicas} replicas would give every replica the same GPUs",
            fix=f"List the GPUs in spec.gpus ({spec.replicas} × {per_replica} of them, e.g. "
            f"{list(range(spec.replicas * per_replica))}); each replica gets its own {per_replica}.",
            param="spec.gpus",
        )
    need = spec.replicas * per_replica
    if len(gpus) < need:
        raise RecipeError(
            f"{spec.replicas} replica(s) × {per_replica} GPU(s) each need {need} GPUs; "
            f"spec.gpus lists {len(gpus)} ({list(gpus)})",
            fix=f"List {need} GPUs in spec.gpus, or lower spec.replicas to {max(1, len(gpus) // per_replica)}"
            " (replicas never share a GPU: each would reserve its memory share twice).",
            param="spec.gpus",
        )
    if not 0 <= replica_index < spec.replicas:
        raise RecipeError(
            f"replica {replica_index} does not exist (spec.replicas is {spec.replicas})",
            fix="Use a replica index below spec.replicas.",
        )
    start = replica_index * per_replica
    return tuple(gpus[start : start + per_replica])


def placement(spec: RecipeSpec, *, per_replica: int | None) -> list[GpuSet]:
    """Every replica's GPUs, in replica order (RecipeError as `replica_gpus`)."""
    return [replica_gpus(spec, i, per_replica=per_replica) for i in range(spec.replicas)]


def unused_gpus(spec: RecipeSpec, *, per_replica: int | None) -> list[int]:
    """GPUs listed in spec.gpus that no replica gets (more listed than replicas × per_replica)."""
    if per_replica is None or isinstance(spec.gpus, str):
        return []
    return list(spec.gpus[spec.replicas * per_replica :])


@dataclass(frozen=True)
class GpuTenant:
    """One model's claim on a GPU, as co-location sees it.

    fraction: the share of the GPU's CUDA total the engine reserves (vLLM's
    gpu_memory_utilization), or None when the engine's claim is not a fixed share
    (it cannot share: its memory grows with what it loads). outside_bytes: memory the
    process holds outside that share (CUDA context, NCCL buffers)."""

    name: str
    fraction: float | None
    outside_bytes: int = 0


@dataclass(frozen=True)
class ColocationVerdict:
    fits: bool
    need_bytes: int
    total_bytes: int
    detail: str


def colocation_fits(new: GpuTenant, others: list[GpuTenant], *, total_bytes: int) -> ColocationVerdict:
    """May `new` join `others` on a GPU whose CUDA total is `total_bytes`?"""
    exclusive = [t.name for t in [new, *others] if t.fraction is None]
    if exclusive:
        return ColocationVerdict(
            False,
            0,
            total_bytes,
            f"{', '.join(exclusive)} does not reserve a fixed share of the GPU, so it cannot share one",
        )
    parts = [new, *others]
    need = sum(int(total_bytes * (t.fraction or 0.0)) + t.outside_bytes for t in parts)
    shares = " + ".join(f"{t.name} {t.fraction:.2f}" for t in parts)
    detail = (
        f"{shares} = {sum(t.fraction or 0.0 for t in parts):.2f} of the GPU, plus "
        f"{sum(t.outside_bytes for t in parts) / 1024**3:.2f} GiB of CUDA context/NCCL outside the shares: "
        f"{need / 1024**3:.2f} of {total_bytes / 1024**3:.2f} GiB"
    )
    return ColocationVerdict(need <= total_bytes, need, total_bytes, detail)
