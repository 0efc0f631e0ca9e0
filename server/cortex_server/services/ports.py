"""Engine ports: the lowest free port in the configured range, never one in use."""

from __future__ import annotations

from collections.abc import Callable

from cortexctl.core.errors import EngineError


class PortAllocator:
    def __init__(self, port_range: tuple[int, int], *, is_free: Callable[[int], bool]) -> None:
        self._low, self._high = port_range
        self._is_free = is_free

    def allocate(self, *, exclude: set[int]) -> int:
        for port in range(self._low, self._high + 1):
            if port not in exclude and self._is_free(port):
                return port
        raise EngineError(
            f"No free engine port in {self._low}-{self._high}.",
            fix="Stop unused models or widen CORTEX_ENGINE_PORT_RANGE.",
        )
