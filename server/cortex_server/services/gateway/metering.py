"""What the gateway measures about one proxied request, turned into a usage row."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from cortex_server.core.auth import Principal
from cortex_server.services.gateway.client_gone import CLIENT_CLOSED_REQUEST

UsageSink = Callable[[dict[str, Any]], None]


class UsageGate(Protocol):
    """The durability side of metering (the usage writer): a response ends only once its record is
    on disk, and new inference is refused while nothing durable can be written (if so configured)."""

    async def durable(self) -> bool: ...

    def refusal(self) -> str | None: ...


_ID_PREFIX = os.urandom(8).hex()  # unique per process; a counter makes the rest (uuid4 costs a syscall)
_ids = itertools.count(1)


def new_request_id() -> str:
    """A request's one id: its rate-limit lease, its `x-request-id` and its usage row."""
    return f"{_ID_PREFIX}{next(_ids):016x}"


class CallMeter:
    """Filled in as the request goes; `row()` once it is over (in a `finally`)."""

    __slots__ = (
        "request_id",
        "created_at",
        "started",
        "principal",
        "model",
        "endpoint",
        "replica",
        "status_code",
        "ttft_s",
        "usage",
        "streamed",
        "cancelled",
        "reached_engine",
        "prompt_estimate",
    )

    def __init__(
        self,
        *,
        principal: Principal,
        model: str,
        endpoint: str,
        streamed: bool,
        request_id: str | None = None,
    ) -> None:
        self.request_id = request_id or new_request_id()
        self.created_at = datetime.now(UTC)
        self.started = time.perf_counter()
        self.principal = principal
        self.model = model
        self.endpoint = endpoint
        self.replica: str | None = None
        self.status_code = 500
        self.ttft_s: float | None = None
        self.usage: dict[str, Any] | None = None
        self.streamed = streamed
        self.cancelled = False
        self.reached_engine = False
        self.prompt_estimate = 0  # billed as prompt tokens when the engine never said (it was cut short)

    def mark_first_byte(self) -> None:
        if self.ttft_s is None:
            self.ttft_s = time.perf_counter() - self.started

    def bill_estimate(self, completion_tokens: int = 0) -> None:
        """No usage from the engine (the client left, the engine died): bill what we know it did."""
        if self.usage is None:
            self.usage = {"prompt_tokens": self.prompt_estimate, "completion_tokens": completion_tokens}

    def row(self) -> dict[str, Any]:
        usage = self.usage or {}
        p = self.principal
        return {
            "request_id": self.request_id,
            "created_at": self.created_at,
            "org_id": p.org_id,
            "user_id": p.user_id,
            "api_key_id": p.key_id,
            "model": self.model,
            "replica": self.replica,
            "endpoint": self.endpoint,
            "prompt_tokens": _int(usage.get("prompt_tokens")),
            "completion_tokens": _int(usage.get("completion_tokens")),
            "latency_ms": (time.perf_counter() - self.started) * 1000.0,
            "ttft_ms": None if self.ttft_s is None else self.ttft_s * 1000.0,
            "status_code": CLIENT_CLOSED_REQUEST if self.cancelled else self.status_code,
            "streamed": self.streamed,
            "cancelled": self.cancelled,
        }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
