"""Schemas for orgs, users, sessions, usage and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cortex_server.core.security import MAX_PASSWORD_BYTES
from cortex_server.schemas.keys import IDENT_MAX, LIST_MAX, NAME_PATTERN, Cidr, Concurrency, Rpm, Tpm

Role = Literal["owner", "admin", "member", "viewer"]


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    rpm_limit: Rpm | None = None
    tpm_limit: Tpm | None = None
    max_concurrent: Concurrency | None = None
    allowed_ips: list[Cidr] = Field(default_factory=list, max_length=LIST_MAX)


class OrgUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rpm_limit: Rpm | None = None
    tpm_limit: Tpm | None = None
    max_concurrent: Concurrency | None = None
    allowed_ips: list[Cidr] | None = Field(None, max_length=LIST_MAX)


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
    password: str | None = Field(
        None, max_length=MAX_PASSWORD_BYTES, description="default: a generated one, returned once"
    )
    org: str | None = Field(None, max_length=IDENT_MAX, description="org name or id (operators only)")


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    is_active: bool | None = None
    password: str | None = Field(None, max_length=MAX_PASSWORD_BYTES)


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
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_BYTES)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_BYTES)
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_BYTES)


class Me(BaseModel):
    kind: str
    name: str
    org_id: int
    org: str
    role: str | None
    scopes: list[str]
    operator: bool
    csrf_token: str | None = Field(None, description="sessions: send it as X-CSRF-Token on writes")


class SessionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    client_ip: str | None
    user_agent: str | None
    current: bool = False


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
