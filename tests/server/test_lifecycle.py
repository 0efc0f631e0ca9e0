from cortex_server.services.lifecycle import State, aggregate_state, restart_delay_s
from cortex_server.services.ports import PortAllocator


def test_backoff_doubles_then_caps() -> None:
    assert [restart_delay_s(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_aggregate_state() -> None:
    R, L, F, S = State.RUNNING, State.LOADING, State.FAILED, State.STOPPED
    assert aggregate_state([], "running") == State.STARTING
    assert aggregate_state([], "stopped") == State.STOPPED
    assert aggregate_state([R, R], "running") == R
    assert aggregate_state([R, F], "running") == R  # degraded but serving
    assert aggregate_state([L, F], "running") == L
    assert aggregate_state([F, F], "running") == F
    assert aggregate_state([F, S], "running") == F
    assert aggregate_state([R], "stopped") == State.STOPPING
    assert aggregate_state([S, F], "stopped") == S


def test_port_allocator_skips_taken_and_excluded_ports() -> None:
    taken = {18000, 18002}
    alloc = PortAllocator((18000, 18004), is_free=lambda p: p not in taken)
    assert alloc.allocate(exclude=set()) == 18001
    assert alloc.allocate(exclude={18001}) == 18003
