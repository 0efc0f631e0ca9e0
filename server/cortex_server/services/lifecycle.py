"""Model lifecycle rules, free of I/O: states, aggregation over replicas, restart backoff.

stopped → starting → loading → running
             ↘          ↘         ↘
              failed ←───┴─────────┘   (exit, crash loop, load timeout; always with a diagnosis)
any → stopping → stopped
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    LOADING = "loading"
    RUNNING = "running"
    STOPPING = "stopping"
    FAILED = "failed"


MAX_RESTARTS = 5  # consecutive crashes before a replica is declared failed
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 300.0  # a replica running this long has its crash counter reset


def restart_delay_s(restart_count: int) -> float:
    """Exponential backoff: 1, 2, 4, 8, 16, 30, 30 … seconds."""
    return min(BACKOFF_BASE_S * 2**restart_count, BACKOFF_MAX_S)


def aggregate_state(replica_states: list[str], desired: str) -> str:
    """One state for a model from its replicas' states."""
    states = set(replica_states)
    if not states:
        return State.STOPPED if desired == "stopped" else State.STARTING
    if desired == "stopped":
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
