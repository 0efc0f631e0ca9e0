"""/admin/usage and /admin/audit: read-only, always filtered to the caller's org."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from cortex_server.api.deps import AdminPrincipal, SessionDep, UsageReader
from cortex_server.schemas.access import AuditPublic
from cortex_server.services import audit, usage

router = APIRouter(prefix="/admin", tags=["admin: usage"])


@router.get("/usage")
def get_usage(
    principal: UsageReader,
    session: SessionDep,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: Literal["model", "key", "user"] = "model",
) -> dict[str, object]:
    rows = usage.aggregate(session, org_id=principal.org_id, since=since, until=until, group_by=group_by)
    return {"org_id": principal.org_id, "group_by": group_by, "data": rows}


@router.get("/audit", response_model=list[AuditPublic])
def get_audit(
    principal: AdminPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: str | None = None,
):
    return audit.list_records(session, org_id=principal.org_id, limit=limit, action=action)
