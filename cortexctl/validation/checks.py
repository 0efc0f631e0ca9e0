"""Pre-start checks. Each returns a Check: OK / WARN / FAIL, what was found, and the fix.

Checks take everything as arguments (model info, GPUs, the supervisor's view of which
GPUs other models hold), so the CLI, the admin route and the supervisor share them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cortexctl.core.daemon import port_owner
from cortexctl.core.errors import RecipeError
from cortexctl.engines.registry import get_engine
from cortexctl.recipes.placement import (
    GpuTenant,
    colocation_fits,
    outside_share_bytes,
    placement,
    replica_gpus,
    unused_gpus,
)
from cortexctl.recipes.schema import RecipeSpec
from cortexctl.validation.breakdown import Breakdown, fmt_bytes
from cortexctl.validation.gpus import GpuInfo, HostMemory

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
    engine = get_engine(spec.engine)
    if engine.needs_gpu and not wanted:
        return fail(
            name,
            f"{engine.display_name} needs at least one GPU but the recipe selects none"
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
    """GPUs each replica needs of its own, or None when replicas may all see the whole list.

    An engine whose args reserve a share of each GPU (`gpu_memory_utilization`, e.g. vLLM)
    cannot run two replicas on one GPU; it needs tensor × pipeline parallel GPUs per replica."""
    args = spec.engine_args()
    if getattr(args, "gpu_memory_utilization", None) is None:
        return None
    return int(getattr(args, "tensor_parallel_size", 1)) * int(getattr(args, "pipeline_parallel_size", 1))


def tenant_of(name: str, spec: RecipeSpec) -> GpuTenant:
    """This recipe's claim on each of its GPUs, for co-location (placement.colocation_fits)."""
    share = getattr(spec.engine_args(), "gpu_memory_utilization", None)
    if share is None:
        return GpuTenant(name, None)
    return GpuTenant(name, float(share), outside_share_bytes(gpus_per_replica(spec) or 1))


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
            if isinstance(got, str):  # "all" or "none"
                mine = [g.index for g in gpus] if got == "all" else []
            else:
                mine = list(got)
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
    out.extend(get_engine(spec.engine).check_fits_gpu(spec, breakdown, selected))
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


# ---- parallelism and context ------------------------------------------------------------


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
    image = spec.image or get_engine(spec.engine).default_image  # what the docker runtime would run
    if image in set(images):
        return ok("image", f"{image} present")
    return fail(
        "image",
        f"image {image} is not present and this host is offline",
        "Import the bundle that carries it: cortexctl bundle import FILE.",
    )
