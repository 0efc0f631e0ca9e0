"""Run the real llama-server until it has logged its buffers; parse the sizes it logs.

llama-server logs (at -lv 4): `load_tensors: CPU_Mapped model buffer size = X MiB`,
`llama_context: CPU output buffer size`, `llama_kv_cache_iswa: creating [non-]SWA KV cache`
followed by `llama_kv_cache: CPU KV buffer size`, `sched_reserve: CPU compute buffer size`,
and the `common_params_fit` memory breakdown it projects before loading.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1024 * 1024
_MODEL = re.compile(r"load_tensors:\s+(\S+) model buffer size =\s+([\d.]+) MiB")
_OUTPUT = re.compile(r"llama_context:\s+(\S+)\s+output buffer size =\s+([\d.]+) MiB")
_KV_KIND = re.compile(r"creating\s+(non-SWA|SWA) KV cache, size = (\d+) cells")
_KV = re.compile(r"llama_kv_cache:\s+(\S+) KV buffer size =\s+([\d.]+) MiB")
_COMPUTE = re.compile(r"sched_reserve:\s+(\S+) compute buffer size =\s+([\d.]+) MiB")
_FIT_ROW = re.compile(
    r"common_memory_breakdown_print: \|\s+- (\S+)\s+\|\s+(\d+)\s+=\s+(\d+)\s+\+\s+(\d+)\s+\+\s+(\d+)"
)
_FIT_HOST = re.compile(r"common_params_fit_impl: projected to use (\d+) MiB of host memory")
_DONE = re.compile(r"sched_reserve: graph: nodes")


@dataclass
class LlamaBuffers:
    model: dict[str, float] = field(default_factory=dict)  # buffer name → MiB
    output: float = 0.0
    kv_full: float = 0.0
    kv_swa: float = 0.0
    kv_cells: dict[str, int] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)
    fit: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # self, model, context, compute
    fit_projected_host: int | None = None  # MiB, common_params_fit's own projection
    log: str = ""

    @property
    def model_mapped(self) -> float:
        """Model bytes as file-backed buffers (REPACK holds copies of some of these tensors)."""
        return sum(v for k, v in self.model.items() if k != "CPU_REPACK")

    @property
    def compute_total(self) -> float:
        return sum(self.compute.values())

    @property
    def fit_total(self) -> int:
        return sum(v[0] for v in self.fit.values())


def parse_log(text: str) -> LlamaBuffers:
    b = LlamaBuffers(log=text)
    kind = "non-SWA"
    for line in text.splitlines():
        if m := _MODEL.search(line):
            b.model[m.group(1)] = b.model.get(m.group(1), 0.0) + float(m.group(2))
        elif m := _OUTPUT.search(line):
            b.output += float(m.group(2))
        elif m := _KV_KIND.search(line):
            kind = m.group(1)
            b.kv_cells[kind] = int(m.group(2))
        elif m := _KV.search(line):
            if kind == "SWA":
                b.kv_swa += float(m.group(2))
            else:
                b.kv_full += float(m.group(2))
        elif m := _COMPUTE.search(line):
            b.compute[m.group(1)] = float(m.group(2))
        elif m := _FIT_ROW.search(line):
            if m.group(1) not in b.fit:  # the first table is the projection; a later one is printed at exit
                b.fit[m.group(1)] = tuple(int(x) for x in m.group(2, 3, 4, 5))  # type: ignore[assignment]
        elif m := _FIT_HOST.search(line):
            b.fit_projected_host = int(m.group(1))
    return b


def run_until_buffers(
    binary: Path, args: list[str], *, log_path: Path, timeout_s: float = 90
) -> LlamaBuffers:
    """Start llama-server, stop it as soon as the compute buffers are reserved."""
    with log_path.open("wb") as out:
        proc = subprocess.Popen([str(binary), *args], stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                text = log_path.read_text(errors="replace")
                if _DONE.search(text):
                    break
                if proc.poll() is not None:
                    raise RuntimeError(f"llama-server exited {proc.returncode}:\n{text[-3000:]}")
                time.sleep(0.1)
            else:
                raise TimeoutError(f"llama-server logged no compute buffer in {timeout_s}s:\n{text[-3000:]}")
        finally:
            proc.kill()
            proc.wait()
    return parse_log(log_path.read_text(errors="replace"))
