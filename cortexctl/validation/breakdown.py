"""Memory breakdowns: named byte components, a total, and notes on how each was derived."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

GiB = 1024**3
MiB = 1024**2

Device = Literal["gpu", "host"]


@dataclass(frozen=True)
class Component:
    name: str
    bytes: int
    device: Device
    note: str = ""


@dataclass(frozen=True)
class Breakdown:
    """Per-device memory need of one replica (gpu bytes per GPU when `per_gpu`)."""

    engine: str
    components: tuple[Component, ...]
    notes: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)  # derived numbers (cells, tokens, …)
    per_gpu: bool = False  # gpu components are per GPU (tensor parallel), not the total

    def get(self, name: str) -> int:
        return sum(c.bytes for c in self.components if c.name == name)

    @property
    def gpu_bytes(self) -> int:
        return sum(c.bytes for c in self.components if c.device == "gpu")

    @property
    def host_bytes(self) -> int:
        return sum(c.bytes for c in self.components if c.device == "host")

    @property
    def total(self) -> int:
        return self.gpu_bytes + self.host_bytes

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(gpu_bytes=self.gpu_bytes, host_bytes=self.host_bytes, total=self.total)
        return data


def fmt_bytes(n: int | float) -> str:
    n = float(n)
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"
