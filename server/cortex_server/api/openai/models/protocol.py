"""GET /v1/models: OpenAI's model objects, plus CORTEX's state (extra fields are allowed)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ModelPublic(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "cortex"
    state: str  # running | loading | starting | failed | stopping | stopped
    engine: str
    replicas: int
    healthy_replicas: int
    max_model_len: int | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelPublic]
