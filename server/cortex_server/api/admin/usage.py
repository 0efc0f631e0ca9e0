"""/admin/usage and /admin/audit: read-only, filtered to the caller's org (operators may ask for all)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from cortex_server.api.deps import AdminPrincipal, SessionDep, UsageReader
from cortex_server.db.models import AuditLog
from cortex_server.schemas.access import AuditPublic
from cortex_server.schemas.usage import UsageReport
from cortex_server.services import audit
from cortex_server.services.usage import report as usage
from cortexctl.core.errors import PermissionDenied

router = APIRouter(prefix="/admin", tags=["admin: usage"])


@router.get("/usage", response_model=UsageReport)
def get_usage(
    principal: UsageReader,
    session: SessionDep,
    since: Annotated[str | None, Query(description="ISO time or window back from now: 30m, 24h, 7d")] = None,
    until: Annotated[str | None, Query(description="ISO time or window back from now")] = None,
    by: Literal["model", "key", "user", "org"] | None = None,
    group_by: Annotated[Literal["model", "key", "user", "org"] | None, Query(deprecated=True)] = None,
    bucket: Literal["none", "minute", "hour", "day"] = "none",
    all_orgs: Annotated[bool, Query(description="operators: every org")] = False,
    format: Literal["json", "csv"] = "json",
) -> UsageReport | Response:
    if all_orgs and not principal.is_operator:
        raise PermissionDenied(
            "Only the appliance operators may read every org's usage.", fix="Leave out all_orgs."
        )
    query = usage.UsageQuery(
        org_id=None if all_orgs else principal.org_id,
        group_by=by or group_by or "model",
        bucket=bucket,
        since=usage.parse_time(since),
        until=usage.parse_time(until, param="until"),
    )
    rows = usage.report(session, query)
    if format == "csv":
        return Response(
            usage.to_csv(rows),
            media_type="text/csv",
            headers={"content-disposition": 'attachment; filename="cortex-usage.csv"'},
        )
    return UsageReport(
        org_id=query.org_id,
        group_by=query.group_by,
        bucket=query.bucket,
        since=query.since.isoformat() if query.since else None,
        until=query.until.isoformat() if query.until else None,
        fields=list(usage.FIELDS),
        data=rows,
    )


@router.get("/audit", response_model=list[AuditPublic])
def get_audit(
    principal: AdminPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AuditLog]:
    return audit.list_records(session, org_id=principal.org_id, limit=limit, action=action)
