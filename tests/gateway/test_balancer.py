from __future__ import annotations

from cortex_server.services.gateway.balancer import ReplicaBalancer
from cortex_server.services.registry import ModelRegistry, ReplicaEndpoint, ServedModel


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def model(n: int) -> ServedModel:
    replicas = [
        ReplicaEndpoint(
            model_id=1, model_name="m", replica_index=i, base_url=f"http://127.0.0.1:{9000 + i}", healthy=True
        )
        for i in range(n)
    ]
    return ServedModel(served_name="m", engine="llamacpp", state="running", replicas=replicas)


def test_round_robin_rotates_the_first_choice() -> None:
    b = ReplicaBalancer(policy="round_robin", failure_threshold=3, cooldown_s=1, clock=Clock())
    m = model(3)
    firsts = [b.order(m)[0].replica_index for _ in range(6)]
    assert firsts == [0, 1, 2, 0, 1, 2]
    assert sorted(r.replica_index for r in b.order(m)) == [0, 1, 2]  # the rest follow, to retry


def test_least_outstanding_prefers_the_idle_replica() -> None:
    b = ReplicaBalancer(policy="least_outstanding", failure_threshold=3, cooldown_s=1, clock=Clock())
    m = model(3)
    m.replicas[0].outstanding = 5
    m.replicas[1].outstanding = 1
    m.replicas[2].outstanding = 3
    assert [r.replica_index for r in b.order(m)] == [1, 2, 0]


def test_unhealthy_replicas_are_never_chosen() -> None:
    b = ReplicaBalancer(policy="round_robin", failure_threshold=3, cooldown_s=1, clock=Clock())
    m = model(2)
    m.replicas[0].healthy = False
    assert [r.replica_index for r in b.order(m)] * 3 == [1, 1, 1]
    m.replicas[1].healthy = False
    assert b.order(m) == []


def test_breaker_ejects_after_n_failures_until_the_poller_restores_it() -> None:
    clock = Clock()
    registry = ModelRegistry()
    b = ReplicaBalancer(policy="round_robin", failure_threshold=3, cooldown_s=2.0, clock=clock)
    m = model(2)
    registry.put(m)
    bad = m.replicas[0]
    assert not b.record_failure(bad)
    b.record_success(bad)  # a success resets the count
    assert not b.record_failure(bad) and not b.record_failure(bad)
    assert b.record_failure(bad)  # third consecutive: out
    assert all(r is not bad for r in b.order(m))
    # the health poller sees it ready again: back after the cooldown
    assert registry.mark_replica_health("m", bad.key, healthy=True)
    assert all(r is not bad for r in b.order(m))
    clock.now += 2.5
    assert any(r is bad for r in b.order(m))
    assert bad.consecutive_failures == 0
    assert not registry.mark_replica_health("m", "nope/0", healthy=True)


def test_republishing_keeps_replica_objects_so_in_flight_counts_stay_right() -> None:
    """The supervisor republishes every tick; a request in flight decrements the object it took."""
    registry = ModelRegistry()
    registry.put(model(2))
    in_flight = registry.require("m").replicas[0]
    in_flight.outstanding += 1  # a request starts
    registry.put(model(2))  # the next supervisor tick
    assert registry.require("m").replicas[0] is in_flight
    in_flight.outstanding -= 1  # the request ends
    assert registry.require("m").replicas[0].outstanding == 0
    moved = model(2)
    moved.replicas[0].base_url = "http://127.0.0.1:1"  # restarted on another port: a new replica
    registry.put(moved)
    assert registry.require("m").replicas[0] is not in_flight
