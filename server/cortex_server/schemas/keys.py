"""API key schemas for the admin API (separate from the ORM rows)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z0-9_.@-]+$"


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    scopes: list[str] = Field(min_length=1)
    expires_at: datetime | None = None
    allowed_models: list[str] = Field(default_factory=list, description="empty = every model")
    allowed_ips: list[str] = Field(default_factory=list, description="CIDRs (v4/v6); empty = any address")
    rpm_limit: int | None = Field(None, ge=1)
    tpm_limit: int | None = Field(None, ge=1)
    max_concurrent: int | None = Field(None, ge=1)
    org: str | None = Field(None, description="org name or id (operators only); default: the caller's org")


class KeyUpdate(BaseModel):
    """Only the fields sent change; null clears a limit or the expiry."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[str] | None = Field(None, min_length=1)
    expires_at: datetime | None = None
    allowed_models: list[str] | None = None
    allowed_ips: list[str] | None = None
    rpm_limit: int | None = Field(None, ge=1)
    tpm_limit: int | None = Field(None, ge=1)
    max_concurrent: int | None = Field(None, ge=1)


class KeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    scopes: list[str]
    org_id: int
    user_id: int | None
    allowed_models: list[str]
    allowed_ips: list[str]
    rpm_limit: int | None
    tpm_limit: int | None
    max_concurrent: int | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class KeyCreated(KeyPublic):
    key: str = Field(description="the API key itself; shown only in this response")
