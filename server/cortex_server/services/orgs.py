"""Organizations: the tenancy root. Operators manage them; each org's limits bind all its keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cortex_server.core.auth import DEFAULT_ORG
from cortex_server.db.models import Organization, is_row_id
from cortex_server.services.netaccess import parse_cidrs
from cortexctl.core.errors import Conflict, InvalidRequest, NotFound

UPDATABLE = ("rpm_limit", "tpm_limit", "max_concurrent", "allowed_ips")


def create_org(session: Session, *, name: str, **limits: Any) -> Organization:
    if session.scalar(select(Organization.id).where(Organization.name == name)) is not None:
        raise Conflict(f"An organization named {name!r} already exists.", fix="Pick another name.")
    org = Organization(name=name, allowed_ips=[])
    session.add(org)
    _apply(org, limits)
    session.flush()
    return org


def _apply(org: Organization, changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise InvalidRequest(
            f"Cannot change {', '.join(sorted(unknown))}.", fix=f"Change only {', '.join(UPDATABLE)}."
        )
    if "allowed_ips" in changes:
        changes["allowed_ips"] = parse_cidrs(changes["allowed_ips"] or [])
    for name, value in changes.items():
        setattr(org, name, value)


def list_orgs(session: Session, *, only_id: int | None = None) -> list[Organization]:
    query = select(Organization).order_by(Organization.id)
    if only_id is not None:
        query = query.where(Organization.id == only_id)
    return list(session.scalars(query))


def get_org(session: Session, *, ident: str) -> Organization:
    query = select(Organization)
    query = (
        query.where(Organization.id == int(ident))
        if is_row_id(ident)
        else query.where(Organization.name == ident)
    )
    org = session.scalar(query)
    if org is None:
        raise NotFound(f"No organization {ident!r}.", fix="List them with `cortexctl orgs list`.")
    return org


def update_org(session: Session, *, ident: str, changes: dict[str, Any]) -> Organization:
    org = get_org(session, ident=ident)
    _apply(org, changes)
    return org


def delete_org(session: Session, *, ident: str) -> Organization:
    org = get_org(session, ident=ident)
    if org.name == DEFAULT_ORG:
        raise Conflict("The default organization cannot be deleted.", fix="Delete other organizations only.")
    session.delete(org)  # users, keys and chats go with it (ON DELETE CASCADE)
    return org
