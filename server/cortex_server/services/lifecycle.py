"""Model lifecycle rules, free of I/O: states, the transition table, aggregation, backoff.

stopped → starting → loading → running
             ↘          ↘         ↘
              failed ←───┴─────────┘   (exit, crash loop, load timeout; always with a diagnosis)
any → stopping → stopped

One writer: admin calls record intent only (`DesiredState`, a start or restart request,
services/models.py); the supervisor alone moves replica states, each move checked
against `TRANSITIONS` (an illegal one raises `IllegalTransition`), and derives the
model's state from its replicas (`aggregate_state`).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class State(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    LOADING = "loading"
    RUNNING = "running"
    STOPPING = "stopping"
    FAILED = "failed"


class DesiredState(StrEnum):
    """What an admin asked for; the supervisor makes it so."""

    RUNNING = "running"
    STOPPED = "stopped"


# state → the states a replica may move to from it (staying, with a new reason, is always allowed).
TRANSITIONS: dict[State, frozenset[State]] = {
    # starting a process; adopting a running engine after a daemon restart; a refused start
    State.STOPPED: frozenset({State.STARTING, State.LOADING, State.FAILED}),
    State.STARTING: frozenset({State.LOADING, State.RUNNING, State.STOPPING, State.STOPPED, State.FAILED}),
    # → starting: it exited and waits for its restart
    State.LOADING: frozenset({State.RUNNING, State.STARTING, State.STOPPING, State.STOPPED, State.FAILED}),
    # → loading: it stopped answering probes
    State.RUNNING: frozenset({State.LOADING, State.STARTING, State.STOPPING, State.FAILED}),
    State.STOPPING: frozenset({State.STOPPED, State.FAILED}),
    # only a new start request clears a failure
    State.FAILED: frozenset({State.STOPPED}),
}


class IllegalTransition(RuntimeError):
    """A move the lifecycle does not allow: a supervisor bug, never a user error."""


def check_transition(old: State | str, new: State | str) -> State:
    """`new` as a State when `old → new` is allowed; IllegalTransition otherwise."""
    old, new = State(old), State(new)
    if new != old and new not in TRANSITIONS[old]:
        allowed = ", ".join(sorted(TRANSITIONS[old])) or "nothing"
        raise IllegalTransition(f"replica state {old} → {new} is not allowed (from {old}: {allowed})")
    return new


MAX_RESTARTS = 5  # consecutive crashes before a replica is declared failed
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 300.0  # a replica running this long has its crash counter reset


def restart_delay_s(restart_count: int) -> float:
    """Exponential backoff: 1, 2, 4, 8, 16, 30, 30 … seconds."""
    return min(BACKOFF_BASE_S * 2.0 ** min(restart_count, 16), BACKOFF_MAX_S)  # 2**16 s is past the cap


def aggregate_state(replica_states: Iterable[State | str], desired: DesiredState | str) -> State:
    """One state for a model from its replicas' states."""
    states = {State(s) for s in replica_states}
    if not states:
        return State.STOPPED if desired == DesiredState.STOPPED else State.STARTING
    if desired == DesiredState.STOPPED:
        return State.STOPPING if states - {State.STOPPED, State.FAILED} else State.STOPPED
    if states == {State.RUNNING}:
        return State.RUNNING
    if State.RUNNING in states:
        return State.RUNNING  # degraded but serving; replica detail shows which one is not
    if states <= {State.FAILED, State.STOPPED} and State.FAILED in states:
        return State.FAILED
    for state in (State.LOADING, State.STARTING, State.STOPPING):
        if state in states:
            return state
    return State.STOPPED
