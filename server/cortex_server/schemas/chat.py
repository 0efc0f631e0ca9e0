"""Schemas for the chat playground's server-side history (/api/chat/*)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ChatSessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=256)
    title: str | None = Field(None, min_length=1, max_length=256)


class ChatSessionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=256)
    model: str | None = Field(None, min_length=1, max_length=256)


class ChatSessionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    model: str
    created_at: datetime
    updated_at: datetime


class ChatMessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    role: str
    content: str
    created_at: datetime


class ChatSessionDetail(ChatSessionPublic):
    messages: list[ChatMessagePublic]


class ChatSend(BaseModel):
    """One user turn. `params` are OpenAI sampling fields; unset ones take the recipe's defaults."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=200_000)
    model: str | None = Field(None, description="switch the session to this model first")
    system: str | None = Field(None, max_length=50_000, description="a system prompt, sent first")
    params: dict[str, Any] = Field(default_factory=dict)


class ChatModel(BaseModel):
    """A model the playground may offer: served name, state, context and the recipe's defaults."""

    name: str
    engine: str
    state: str
    ready: bool
    context_length: int | None
    request_defaults: dict[str, Any]
