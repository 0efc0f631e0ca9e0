"""Schemas for orgs, users, sessions, usage and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cortex_server.schemas.keys import NAME_PATTERN

Role = Literal["owner", "admin", "member", "viewer"]


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    rpm_limit: int | None = Field(None, ge=1)
    tpm_limit: int | None = Field(None, ge=1)
    max_concurrent: int | None = Field(None, ge=1)
    allowed_ips: list[str] = Field(default_factory=list)


class OrgUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rpm_limit: int | None = Field(None, ge=1)
    tpm_limit: int | None = Field(None, ge=1)
    max_concurrent: int | None = Field(None, ge=1)
    allowed_ips: list[str] | None = None


class OrgPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    rpm_limit: int | None
    tpm_limit: int | None
    max_concurrent: int | None
    allowed_ips: list[str]
    created_at: datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    role: Role = "member"
    password: str | None = Field(None, description="default: a generated one, returned once")
    org: str | None = Field(None, description="org name or id (operators only)")


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    is_active: bool | None = None
    password: str | None = None


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    username: str
    role: str
    is_active: bool
    created_at: datetime


class UserCreated(UserPublic):
    password: str | None = Field(None, description="the generated password; shown only in this response")


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    kind: str
    name: str
    org_id: int
    org: str
    role: str | None
    scopes: list[str]
    operator: bool
    csrf_token: str | None = Field(None, description="sessions: send it as X-CSRF-Token on writes")


class UsageRow(BaseModel):
    model_config = ConfigDict(extra="allow")

    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    errors: int
    avg_latency_ms: float


class AuditPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    org_id: int | None
    actor: str
    action: str
    target: str | None
    client_ip: str | None
    details: dict[str, Any] | None
