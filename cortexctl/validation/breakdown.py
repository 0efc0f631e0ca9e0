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


def parse_size(text: str) -> int:
    """'24GiB', '24 GB', '80g', '512MiB' → bytes (GB and G are read as GiB, as GPU specs mean)."""
    s = text.strip().lower().replace(" ", "")
    units = {
        "tib": 1024**4,
        "tb": 1024**4,
        "t": 1024**4,
        "gib": GiB,
        "gb": GiB,
        "g": GiB,
        "mib": MiB,
        "mb": MiB,
        "m": MiB,
        "kib": 1024,
        "kb": 1024,
        "k": 1024,
        "b": 1,
    }
    for unit in sorted(units, key=len, reverse=True):
        if s.endswith(unit):
            number = s[: -len(unit)]
            try:
                value = float(number)
            except ValueError:
                break
            if value <= 0:
                break
            return int(value * units[unit])
    raise ValueError(f"cannot read {text!r} as a size; use e.g. 24GiB or 512MiB")
