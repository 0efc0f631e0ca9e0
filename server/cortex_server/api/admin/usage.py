"""/admin/usage and /admin/audit: read-only, always filtered to the caller's org."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from cortex_server.api.deps import AdminPrincipal, SessionDep, UsageReader
from cortex_server.schemas.access import AuditPublic
from cortex_server.services import audit, usage

router = APIRouter(prefix="/admin", tags=["admin: usage"])


def _utc(value: datetime | None) -> datetime | None:
    """A time without a zone is read as UTC (the columns are UTC)."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@router.get("/usage")
def get_usage(
    principal: UsageReader,
    session: SessionDep,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: Literal["model", "key", "user"] = "model",
) -> dict[str, object]:
    since, until = (_utc(t) for t in (since, until))
    rows = usage.aggregate(session, org_id=principal.org_id, since=since, until=until, group_by=group_by)
    return {"org_id": principal.org_id, "group_by": group_by, "data": rows}


@router.get("/audit", response_model=list[AuditPublic])
def get_audit(
    principal: AdminPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: Annotated[str | None, Query(max_length=64)] = None,
):
    return audit.list_records(session, org_id=principal.org_id, limit=limit, action=action)
