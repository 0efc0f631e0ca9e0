"""API key schemas for the admin API (separate from the ORM rows).

Every field is bounded: integers fit their columns (PostgreSQL int4) with room to spare, and
strings and lists have caps, so a hostile value is a 400 naming the field, never a 500.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NAME_PATTERN = r"^[A-Za-z0-9_.@-]+$"
IDENT_MAX = 128  # names and ids in paths and ?org=
RPM_MAX = 100_000_000
TPM_MAX = 2_000_000_000
CONCURRENCY_MAX = 1_000_000
LIST_MAX = 256  # entries of allowed_models / allowed_ips / scopes

ModelName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Cidr = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Scope = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Rpm = Annotated[int, Field(ge=1, le=RPM_MAX)]
Tpm = Annotated[int, Field(ge=1, le=TPM_MAX)]
Concurrency = Annotated[int, Field(ge=1, le=CONCURRENCY_MAX)]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    scopes: list[Scope] = Field(min_length=1, max_length=LIST_MAX)
    expires_at: datetime | None = None
    allowed_models: list[ModelName] = Field(
        default_factory=list, max_length=LIST_MAX, description="empty = every model"
    )
    allowed_ips: list[Cidr] = Field(
        default_factory=list, max_length=LIST_MAX, description="CIDRs (v4/v6); empty = any address"
    )
    rpm_limit: Rpm | None = None
    tpm_limit: Tpm | None = None
    max_concurrent: Concurrency | None = None
    org: str | None = Field(
        None, max_length=IDENT_MAX, description="org name or id (operators only); default: the caller's org"
    )


class KeyUpdate(BaseModel):
    """Only the fields sent change; null clears a limit or the expiry."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[Scope] | None = Field(None, min_length=1, max_length=LIST_MAX)
    expires_at: datetime | None = None
    allowed_models: list[ModelName] | None = Field(None, max_length=LIST_MAX)
    allowed_ips: list[Cidr] | None = Field(None, max_length=LIST_MAX)
    rpm_limit: Rpm | None = None
    tpm_limit: Tpm | None = None
    max_concurrent: Concurrency | None = None


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
