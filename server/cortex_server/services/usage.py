"""Usage aggregates from usage_records, always for one org."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cortex_server.db.models import UsageRecord

GROUPS = {"model": UsageRecord.model, "key": UsageRecord.api_key_id, "user": UsageRecord.user_id}


def aggregate(
    session: Session, *, org_id: int, since: datetime | None, until: datetime | None, group_by: str
) -> list[dict[str, Any]]:
    column = GROUPS[group_by]
    query = (
        select(
            column.label("group"),
            func.count().label("requests"),
            func.coalesce(func.sum(UsageRecord.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(UsageRecord.completion_tokens), 0).label("completion_tokens"),
            func.sum(func.cast(UsageRecord.status_code >= 400, type_=UsageRecord.prompt_tokens.type)).label(
                "errors"
            ),
            func.avg(UsageRecord.latency_ms).label("avg_latency_ms"),
        )
        .where(UsageRecord.org_id == org_id)
        .group_by(column)
        .order_by(column)
    )
    if since is not None:
        query = query.where(UsageRecord.created_at >= since)
    if until is not None:
        query = query.where(UsageRecord.created_at < until)
    return [
        {
            group_by: row.group,
            "requests": int(row.requests),
            "prompt_tokens": int(row.prompt_tokens),
            "completion_tokens": int(row.completion_tokens),
            "total_tokens": int(row.prompt_tokens) + int(row.completion_tokens),
            "errors": int(row.errors or 0),
            "avg_latency_ms": round(float(row.avg_latency_ms or 0.0), 2),
        }
        for row in session.execute(query)
    ]
