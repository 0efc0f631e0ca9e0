"""Audit records for state-changing admin calls: who, what, when, from where."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cortex_server.core.auth import Principal
from cortex_server.db.models import AuditLog


def record(
    session: Session,
    *,
    principal: Principal,
    action: str,
    target: str | None,
    client_ip: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    record_as(
        session,
        actor=principal.actor,
        org_id=principal.org_id,
        action=action,
        target=target,
        client_ip=client_ip,
        details=details,
    )


def record_as(
    session: Session,
    *,
    actor: str,
    org_id: int | None,
    action: str,
    target: str | None,
    client_ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """An audit record for an actor that is no principal of a request (the bundle importer)."""
    session.add(
        AuditLog(
            org_id=org_id, actor=actor, action=action, target=target, client_ip=client_ip, details=details
        )
    )


def list_records(session: Session, *, org_id: int, limit: int, action: str | None = None) -> list[AuditLog]:
    query = select(AuditLog).where(AuditLog.org_id == org_id).order_by(AuditLog.id.desc()).limit(limit)
    if action:
        query = query.where(AuditLog.action == action)
    return list(session.scalars(query))
