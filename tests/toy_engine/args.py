"""The toy engine's `spec.args`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from cortexctl.recipes.schema import EngineArgs


class ToyArgs(EngineArgs):
    max_model_len: int | None = Field(None, ge=16, description="--max-model-len")
    extra_args: list[str] = Field(default_factory=list, description="more toy-server flags (checked)")

    EMBEDDINGS_SETTING: ClassVar[str] = "(the toy engine serves no embeddings)"

    def serves_embeddings(self) -> bool | None:
        return False
