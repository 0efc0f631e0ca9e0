"""Which replica serves a request: a healthy-replica order plus a circuit breaker.

The supervisor's health poller owns `ReplicaEndpoint.healthy`; the breaker may only
take a replica *out* (after N consecutive failures). It comes back when the poller
marks it healthy again (`ModelRegistry.mark_replica_health`) and its cooldown is over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from cortex_server.services.registry import ReplicaEndpoint, ServedModel

if TYPE_CHECKING:
    from cortex_server.services.observability.gateway import GatewayMetrics

log = logging.getLogger(__name__)

RoutingPolicy = Literal["round_robin", "least_outstanding"]


class ReplicaBalancer:
    def __init__(
        self,
        *,
        policy: RoutingPolicy,
        failure_threshold: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.policy = policy
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._turn: dict[str, int] = {}
        self.metrics = metrics

    def order(self, model: ServedModel) -> list[ReplicaEndpoint]:
        """The replicas to try, best first: healthy and not ejected."""
        replicas = model.replicas
        if len(replicas) == 1:  # the common case, without allocations beyond the list
            r = replicas[0]
            return [r] if r.healthy and r.ejected_until <= self._clock() else []
        now = self._clock()
        ready = [r for r in replicas if r.healthy and r.ejected_until <= now]
        if len(ready) <= 1:
            return ready
        turn = self._turn.get(model.served_name, 0)
        self._turn[model.served_name] = turn + 1
        k = turn % len(ready)
        rotated = ready[k:] + ready[:k]  # rotation breaks ties fairly for both policies
        if self.policy == "least_outstanding":
            rotated.sort(key=_outstanding)  # stable: equal loads keep the round-robin order
        return rotated

    def record_success(self, replica: ReplicaEndpoint) -> None:
        replica.consecutive_failures = 0

    def record_failure(self, replica: ReplicaEndpoint) -> bool:
        """Count a failure; return True when this one ejected the replica."""
        replica.consecutive_failures += 1
        if self.metrics is not None:
            self.metrics.connect_error(replica.model_name, replica.key)
        if replica.consecutive_failures >= self.failure_threshold and replica.healthy:
            replica.healthy = False
            replica.ejected_until = self._clock() + self.cooldown_s
            log.warning(
                "replica %s (%s) ejected after %s consecutive failures",
                replica.key,
                replica.base_url,
                replica.consecutive_failures,
            )
            return True
        return False

    def record_retry(self, replica: ReplicaEndpoint) -> None:
        """The request is sent again (same replica or the next one)."""
        if self.metrics is not None:
            self.metrics.retry(replica.model_name)


def _outstanding(replica: ReplicaEndpoint) -> int:
    return replica.outstanding
