"""Recipe schemas for the admin API (separate from the ORM rows and the recipe schema itself)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RecipeApply(BaseModel):
    """A recipe to create or update: its YAML text, kept byte-for-byte."""

    model_config = ConfigDict(extra="forbid")

    yaml: str = Field(
        min_length=1, max_length=1_000_000, description="the recipe's YAML text, stored verbatim"
    )
    source: str | None = Field(
        None, max_length=1024, description="file it came from (resolves relative paths)"
    )


class RecipePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    engine: str
    served_name: str
    source: str | None
    created_at: datetime
    updated_at: datetime


class RecipeDetail(RecipePublic):
    description: str
    yaml: str = Field(description="the YAML exactly as applied")
    recipe: dict[str, Any] | None = Field(
        description="the parsed recipe, defaults filled in; None if invalid now"
    )
    problems: list[str] = Field(default_factory=list, description="why the stored YAML no longer validates")
