"""Model (deployment) schemas for the admin API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cortex_server.services.lifecycle import DesiredState, State


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yaml: str | None = Field(None, description="recipe YAML to register (or update) and deploy")
    source: str | None = Field(None, description="file the YAML came from, for error messages")
    recipe: str | None = Field(None, description="name of an already registered recipe")
    name: str | None = Field(None, description="model name; default: the recipe's name")
    start: bool = False


class ReplicaPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    replica_index: int
    state: State
    state_reason: str | None
    state_changed_at: datetime
    runtime: str | None
    port: int | None
    pid: int | None
    container_id: str | None
    restart_count: int
    last_exit_code: int | None
    diagnosis: dict[str, Any] | None


class CrashHistory(BaseModel):
    """The engine crashes since the model was last started by hand (kept across daemon restarts)."""

    restart_count: int
    last_exit_code: int | None = None
    last_exit_signal: int | None = None
    last_crash: dict[str, Any] | None = None  # rule, summary, fix, the matched log lines, at


class ModelPublic(BaseModel):
    name: str
    recipe: str
    engine: str
    served_name: str
    desired_state: DesiredState
    state: State
    state_reason: str | None
    state_changed_at: datetime
    diagnosis: dict[str, Any] | None
    runtime: str | None
    replicas: list[ReplicaPublic]
    created_at: datetime
    crashes: CrashHistory | None = None  # None: no crash since the last start by hand


class ModelLogs(BaseModel):
    name: str
    replica: int
    logs: str
    diagnosis: dict[str, Any] | None
    crashes: CrashHistory | None = None
