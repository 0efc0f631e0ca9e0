import pytest
from sqlalchemy import select

from cortex_server.db.engine import make_engine, make_session_factory
from cortex_server.db.migrate import upgrade_to_head
from cortex_server.db.models import EnginePort, Model
from cortex_server.services.lifecycle import (
    TRANSITIONS,
    DesiredState,
    IllegalTransition,
    State,
    aggregate_state,
    check_transition,
    restart_delay_s,
)
from cortex_server.services.models import record_intent
from cortex_server.services.ports import PortAllocator
from cortex_server.services.supervisor import LiveReplica
from cortexctl.engines.registry import get_engine


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


def test_port_allocator_skips_busy_and_held_ports_and_releases(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    factory = make_session_factory(engine)
    taken = {18000, 18002}  # something listens there
    mine = PortAllocator(
        (18000, 18004), is_free=lambda p: p not in taken, session_factory=factory, installation_id="a"
    )
    theirs = PortAllocator(
        (18000, 18004), is_free=lambda p: p not in taken, session_factory=factory, installation_id="b"
    )
    assert mine.allocate(model_id=1, replica_index=0) == 18001
    assert theirs.allocate(model_id=2, replica_index=0) == 18003  # held in the DB, though nothing listens yet
    mine.release(18001)
    assert theirs.allocate(model_id=3, replica_index=0) == 18001
    theirs.release_all_but({18001})
    with factory() as session:
        assert sorted(session.scalars(select(EnginePort.port))) == [18001]
    engine.dispose()


def test_every_illegal_replica_move_is_refused_and_every_legal_one_allowed() -> None:
    legal = 0
    for old in State:
        for new in State:
            if new == old or new in TRANSITIONS[old]:
                assert check_transition(old, new) == new
                legal += 1
            else:
                with pytest.raises(IllegalTransition, match=f"{old} → {new} is not allowed"):
                    check_transition(old, new)
    assert legal == len(State) + sum(len(v) for v in TRANSITIONS.values())
    # The moves the diagram forbids, spelled out: no skipping the start, no leaving a failure but by a
    # new start request, no stop without stopping.
    for old, new in [
        (State.STOPPED, State.RUNNING),
        (State.FAILED, State.STARTING),
        (State.FAILED, State.RUNNING),
        (State.RUNNING, State.STOPPED),
        (State.STOPPING, State.RUNNING),
        (State.STOPPED, State.STOPPING),
    ]:
        with pytest.raises(IllegalTransition):
            check_transition(old, new)


def test_a_live_replica_moves_only_through_the_table() -> None:
    live = LiveReplica(model_id=1, replica_index=0, engine=get_engine("llamacpp"))
    for state in (State.STARTING, State.LOADING, State.RUNNING, State.STOPPING, State.STOPPED):
        live.set(state, "step")
    with pytest.raises(IllegalTransition):
        live.set(State.RUNNING, "from stopped")
    assert live.state == State.STOPPED


def test_admin_calls_record_intent_and_leave_states_to_the_supervisor() -> None:
    model = Model(name="m", recipe_id=1, served_name="m", state=State.FAILED, diagnosis={"rule": "x"})
    record_intent(model, desired=DesiredState.RUNNING)
    assert model.desired_state == DesiredState.RUNNING and model.start_requested_at is not None
    assert model.restart_requested_at is None
    assert model.state == State.FAILED and model.diagnosis == {"rule": "x"}  # the supervisor's to change
    record_intent(model, desired=DesiredState.RUNNING, restart=True)
    assert model.restart_requested_at == model.start_requested_at
    record_intent(model, desired=DesiredState.STOPPED)
    assert model.desired_state == DesiredState.STOPPED and model.state == State.FAILED
