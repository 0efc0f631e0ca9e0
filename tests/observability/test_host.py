"""Host and GPU series. NVML needs an NVIDIA GPU, which this host lacks: `NvmlDouble` stands in
for it (named as a double); the processes it reports are real ones, so attributing GPU memory to
engines (a process or its parent) runs against the real process table."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
from prometheus_client import CollectorRegistry, generate_latest

from cortex_server.services.observability.collectors import HostCollector, owner_of
from cortex_server.services.observability.host import Gpu, GpuProcess, Nvml
from tests.observability.promtext import value


class NvmlDouble(Nvml):
    """A test double for NVML: two GPUs whose compute processes are the pids given."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__()
        self.pids = pids

    def gpus(self) -> list[Gpu]:
        procs = [GpuProcess(pid, 1 << 30) for pid in self.pids]
        return [
            Gpu(0, "Double H100", "GPU-0", 87.0, 40 << 30, 80 << 30, 61.0, 412.5, procs),
            Gpu(1, "Double H100", "GPU-1", None, 1 << 20, 80 << 30, None, None, []),  # sensors it lacks
        ]


def render(collector: HostCollector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def test_gpu_memory_is_attributed_to_the_engine_that_owns_the_process(tmp_path: Path) -> None:
    # an "engine" that forks a worker (as vLLM does): the worker holds the GPU memory
    engine = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess,sys,time; subprocess.Popen([sys.executable,'-c',"
            "'import time; time.sleep(60)']); time.sleep(60)",
        ]  # fmt: skip
    )
    try:
        deadline = 50
        while not psutil.Process(engine.pid).children() and deadline:
            deadline -= 1
            time.sleep(0.1)
        [worker] = psutil.Process(engine.pid).children()
        stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        owners = {engine.pid: ("big", "big/0")}
        assert owner_of(worker.pid, owners) == ("big", "big/0")
        assert owner_of(stranger.pid, owners) is None
        collector = HostCollector(
            disk_paths={"home": tmp_path, "models": tmp_path / "models"},
            nvml=NvmlDouble([worker.pid, stranger.pid]),
            engine_pids=lambda: owners,
        )
        text = render(collector)
        gpu0 = {"gpu": "0", "name": "Double H100"}
        assert value(text, "cortex_gpu_utilization_percent", **gpu0) == 87.0
        assert value(text, "cortex_gpu_memory_used_bytes", **gpu0) == 40 << 30
        assert value(text, "cortex_gpu_power_watts", **gpu0) == 412.5
        assert value(text, "cortex_gpu_temperature_celsius", gpu="1", name="Double H100") is None
        assert value(text, "cortex_gpu_engine_memory_bytes", gpu="0", model="big", replica="big/0") == 1 << 30
        assert value(text, "cortex_gpu_engine_memory_bytes", gpu="0", model="other", replica="") == 1 << 30
        assert value(text, "cortex_engine_memory_rss_bytes", model="big", replica="big/0") > 1 << 20
        assert value(text, "cortex_disk_bytes", name="models", kind="total") > 0  # nearest existing parent
        stranger.kill()
    finally:
        engine.kill()
        for child in psutil.Process().children(recursive=True):
            child.kill()


def test_no_gpu_means_no_gpu_series_and_no_error(tmp_path: Path) -> None:
    class NoDriver(Nvml):
        def gpus(self) -> list[Gpu]:
            return []

    text = render(HostCollector(disk_paths={"home": tmp_path}, nvml=NoDriver(), engine_pids=dict))
    assert "cortex_gpu_" not in text and value(text, "cortex_host_cpu_count")
    assert Nvml().gpus() == [] or "NVIDIA" in Path("/proc/driver/nvidia/version").read_text()
