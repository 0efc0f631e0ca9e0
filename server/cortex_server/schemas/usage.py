"""Usage analytics: the report /admin/usage returns (one row per group and bucket)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class UsageReport(BaseModel):
    """`data` rows carry the group (`model`, `key`, `user` or `org`: its value, null for
    rejections that had none), `bucket` (UTC start, when bucketed) and the measures in
    `cortex_server.services.usage.FIELDS`."""

    org_id: int | None  # None: every org (operators asking for all)
    group_by: str
    bucket: str
    since: str | None
    until: str | None
    fields: list[str]
    data: list[dict[str, Any]]
