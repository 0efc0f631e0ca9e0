"""The GPUs validation plans against: real ones via NVML, or pretend profiles.

`detect_gpus()` returns [] on hosts without an NVIDIA driver (NVML missing) — that is
a normal answer, not an error. Pretend profiles let an admin validate a recipe for a
GPU this machine does not have (`--gpu-profile h100-80g`, `--gpu-profile 2xa100-80g`,
`--vram 24GiB`). Memory figures are the totals nvidia-smi reports for each card.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import psutil

from cortexctl.core.errors import InvalidRequest
from cortexctl.core.sizes import parse_size
from cortexctl.validation.breakdown import MiB

log = logging.getLogger(__name__)


# NVML counts memory the driver keeps for itself (nvidia-smi's "Reserved" row), CUDA does not:
# vLLM logs e.g. "Free memory on device cuda:0 (3.25/23.43 GiB)" on a 24 GiB card. Without
# NVML's own figure (memory info v2) we take off this much; scripts/gpu-check.sh measures it.
DRIVER_RESERVED_GUESS = 512 * MiB


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    compute_capability: tuple[int, int] | None  # None: unknown (generic --vram GPU)
    pretend: bool = False
    # What CUDA reports as the total (torch.cuda.mem_get_info): NVML's total less what the
    # driver reserves. vLLM's budget is a fraction of this one. None: not known.
    cuda_total: int | None = None

    @property
    def cuda_total_bytes(self) -> int:
        """CUDA's total; without a measured one, NVML's total less DRIVER_RESERVED_GUESS."""
        if self.cuda_total is not None:
            return self.cuda_total
        return max(0, self.total_bytes - DRIVER_RESERVED_GUESS)

    @property
    def cc(self) -> float | None:
        if self.compute_capability is None:
            return None
        major, minor = self.compute_capability
        return major + minor / 10

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GpuProfile:
    name: str
    total_mib: int
    compute_capability: tuple[int, int]


GPU_PROFILES: dict[str, GpuProfile] = {
    "a100-80g": GpuProfile("NVIDIA A100-SXM4-80GB", 81920, (8, 0)),
    "a100-40g": GpuProfile("NVIDIA A100-SXM4-40GB", 40960, (8, 0)),
    "h100-80g": GpuProfile("NVIDIA H100 80GB HBM3", 81559, (9, 0)),
    "h200-141g": GpuProfile("NVIDIA H200", 143771, (9, 0)),
    "l4-24g": GpuProfile("NVIDIA L4", 23034, (8, 9)),
    "l40s-48g": GpuProfile("NVIDIA L40S", 46068, (8, 9)),
    "a10g-24g": GpuProfile("NVIDIA A10G", 23028, (8, 6)),
    "t4-16g": GpuProfile("Tesla T4", 15360, (7, 5)),
    "rtx4090-24g": GpuProfile("NVIDIA GeForce RTX 4090", 24564, (8, 9)),
    "rtx3090-24g": GpuProfile("NVIDIA GeForce RTX 3090", 24576, (8, 6)),
}
_COUNT_RE = re.compile(r"^(?:(\d+)\s*x\s*)?(.+)$", re.IGNORECASE)


def detect_gpus() -> list[GpuInfo]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        log.debug("NVML unavailable: %s", exc)
        return []
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            cuda_total = _cuda_total(pynvml, h)
            name = pynvml.nvmlDeviceGetName(h)
            cc = pynvml.nvmlDeviceGetCudaComputeCapability(h)
            gpus.append(
                GpuInfo(
                    index=i,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    total_bytes=int(mem.total),
                    free_bytes=int(mem.free),
                    compute_capability=(int(cc[0]), int(cc[1])),
                    cuda_total=cuda_total,
                )
            )
        return gpus
    except pynvml.NVMLError as exc:
        log.warning("NVML query failed: %s", exc)
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def _cuda_total(pynvml: Any, handle: Any) -> int | None:
    """NVML memory info v2 names the driver's reservation; total less it is what CUDA sees."""
    version = getattr(pynvml, "nvmlMemory_v2", None)
    if version is None:
        return None
    try:
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle, version=version)
        return int(mem.total) - int(mem.reserved)
    except (pynvml.NVMLError, TypeError, AttributeError):
        return None


def pretend_gpus(*, profile: str | None = None, vram: str | None = None, count: int = 1) -> list[GpuInfo]:
    """GPUs from `--gpu-profile [Nx]NAME` or `--vram SIZE` (a generic GPU, capability unknown)."""
    if profile and vram:
        raise InvalidRequest(
            "Give either --gpu-profile or --vram, not both.", fix="Drop one of the two options."
        )
    if vram:
        try:
            size = parse_size(vram)
        except ValueError as exc:
            raise InvalidRequest(str(exc), fix="Use a size such as --vram 24GiB.") from None
        return [GpuInfo(i, f"generic {vram} GPU", size, size, None, pretend=True) for i in range(count)]
    if not profile:
        return []
    m = _COUNT_RE.match(profile.strip())
    key = (m.group(2) if m else profile).lower()
    if m and m.group(1):
        count = int(m.group(1))
    p = GPU_PROFILES.get(key)
    if p is None:
        raise InvalidRequest(
            f"Unknown GPU profile {profile!r}",
            fix="Use one of: " + ", ".join(GPU_PROFILES) + " (optionally with a count, e.g. 2xa100-80g), "
            "or --vram 24GiB.",
        )
    total = p.total_mib * MiB
    return [GpuInfo(i, p.name, total, total, p.compute_capability, pretend=True) for i in range(count)]


@dataclass(frozen=True)
class HostMemory:
    total_bytes: int
    available_bytes: int


def host_memory() -> HostMemory:
    vm = psutil.virtual_memory()
    return HostMemory(total_bytes=int(vm.total), available_bytes=int(vm.available))


def parse_gpu_selection(text: str) -> Literal["all", "none"] | list[int]:
    """`--gpus 0,1` / `all` / `none` → the value spec.gpus takes."""
    s = text.strip().lower()
    if s in ("all", "none"):
        return s  # type: ignore[return-value]
    try:
        indices = [int(p) for p in s.replace(" ", "").split(",") if p != ""]
    except ValueError:
        indices = []
    if not indices or any(i < 0 for i in indices):
        raise InvalidRequest(
            f"Cannot read --gpus {text!r}", fix="Use --gpus 0,1 or --gpus all or --gpus none."
        )
    return sorted(set(indices))
