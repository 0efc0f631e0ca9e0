"""This host's CPU, memory, disks and GPUs, as plain data (for /metrics and /admin/system).

GPUs come from NVML (`nvidia-ml-py`). A host without an NVIDIA driver has no GPUs:
`gpus()` returns [] and /metrics has no GPU series; that is not an error. NVML is
initialised once; a failed init is retried at most once a minute.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)


@dataclass
class DiskUsage:
    name: str  # "home" | "models"
    path: str
    total_bytes: int
    used_bytes: int
    free_bytes: int


@dataclass
class GpuProcess:
    pid: int
    used_memory_bytes: int | None


@dataclass
class Gpu:
    index: int
    name: str
    uuid: str
    utilization_percent: float | None
    memory_used_bytes: int
    memory_total_bytes: int
    temperature_c: float | None
    power_w: float | None
    processes: list[GpuProcess] = field(default_factory=list)


def host_info() -> dict[str, Any]:
    vm = psutil.virtual_memory()
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": psutil.cpu_count() or 0,
        "cpu_percent": psutil.cpu_percent(interval=None),
        "load_average": list(os.getloadavg()),
        "memory_total_bytes": vm.total,
        "memory_available_bytes": vm.available,
        "memory_used_percent": vm.percent,
        "boot_time": psutil.boot_time(),
    }


def disks(paths: dict[str, Path]) -> list[DiskUsage]:
    """Usage of the filesystem holding each path (the nearest existing parent)."""
    out = []
    for name, path in paths.items():
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            du = psutil.disk_usage(str(probe))
        except OSError:
            continue
        out.append(DiskUsage(name, str(path), du.total, du.used, du.free))
    return out


class Nvml:
    """A lazily initialised NVML session; no driver means no GPUs."""

    RETRY_S = 60.0

    def __init__(self) -> None:
        self._ok = False
        self._tried_at: float | None = None
        self._nvml: Any = None

    def _ready(self) -> bool:
        if self._ok:
            return True
        now = time.monotonic()
        if self._tried_at is not None and now - self._tried_at < self.RETRY_S:
            return False
        self._tried_at = now
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - no library, no driver, no device: all mean "no GPUs"
            log.debug("NVML unavailable: %s", exc)
            return False
        self._nvml, self._ok = pynvml, True
        return True

    def gpus(self) -> list[Gpu]:
        if not self._ready():
            return []
        nv = self._nvml
        out = []
        try:
            count = nv.nvmlDeviceGetCount()
        except nv.NVMLError:
            return []
        for index in range(count):
            try:
                handle = nv.nvmlDeviceGetHandleByIndex(index)
                mem = nv.nvmlDeviceGetMemoryInfo(handle)
                gpu = Gpu(
                    index=index,
                    name=_text(nv.nvmlDeviceGetName(handle)),
                    uuid=_text(nv.nvmlDeviceGetUUID(handle)),
                    utilization_percent=_maybe(lambda h=handle: nv.nvmlDeviceGetUtilizationRates(h).gpu),
                    memory_used_bytes=int(mem.used),
                    memory_total_bytes=int(mem.total),
                    temperature_c=_maybe(lambda h=handle: float(nv.nvmlDeviceGetTemperature(h, 0))),
                    power_w=_maybe(lambda h=handle: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
                    processes=_processes(nv, handle),
                )
            except nv.NVMLError as exc:
                log.debug("GPU %s unreadable: %s", index, exc)
                continue
            out.append(gpu)
        return out


def _processes(nv: Any, handle: Any) -> list[GpuProcess]:
    try:
        procs = list(nv.nvmlDeviceGetComputeRunningProcesses(handle))
    except nv.NVMLError:
        return []
    return [GpuProcess(int(p.pid), _int_or_none(getattr(p, "usedGpuMemory", None))) for p in procs]


def _maybe(read: Any) -> float | None:
    try:
        return float(read())
    except Exception:  # noqa: BLE001 - a sensor this GPU does not have
        return None


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and value >= 0 else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def as_dict(item: Any) -> dict[str, Any]:
    return asdict(item)
