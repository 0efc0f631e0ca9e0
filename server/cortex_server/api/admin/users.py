"""/admin/users: console users of the caller's org (operators may name another org)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from cortex_server.api.deps import ClientIpDep, ContextDep, SessionDep, UsersWriter
from cortex_server.core.auth import Principal
from cortex_server.db.models import User
from cortex_server.schemas.access import UserCreate, UserCreated, UserPublic, UserUpdate
from cortex_server.schemas.keys import IDENT_MAX
from cortex_server.services import audit, orgs, sessions, users
from cortex_server.services.policy import ensure_role_assignable, target_org

router = APIRouter(prefix="/admin/users", tags=["admin: users"])
OrgQuery = Annotated[str | None, Query(max_length=IDENT_MAX, description="org name or id (operators only)")]
Ident = Annotated[str, Path(min_length=1, max_length=IDENT_MAX, description="user id or name")]


def _org_id(session: SessionDep, principal: Principal, org: str | None) -> int:
    if org is None:
        return principal.org_id
    return target_org(principal, orgs.get_org(session, ident=org).id if principal.is_operator else -1)


@router.post("", response_model=UserCreated, status_code=201)
def create_user(
    body: UserCreate, principal: UsersWriter, session: SessionDep, ip: ClientIpDep
) -> UserCreated:
    ensure_role_assignable(principal, body.role)
    org_id = _org_id(session, principal, body.org)
    created = users.create_user(
        session, org_id=org_id, username=body.username, role=body.role, password=body.password
    )
    audit.record(
        session,
        principal=principal,
        action="users.create",
        target=body.username,
        client_ip=ip,
        details={"role": body.role, "org_id": org_id},
    )
    session.commit()
    return UserCreated(**UserPublic.model_validate(created.row).model_dump(), password=created.password)


@router.get("", response_model=list[UserPublic])
def list_users(principal: UsersWriter, session: SessionDep, org: OrgQuery = None) -> list[User]:
    return users.list_users(session, org_id=_org_id(session, principal, org))


@router.get("/{ident}", response_model=UserPublic)
def show_user(ident: Ident, principal: UsersWriter, session: SessionDep, org: OrgQuery = None) -> User:
    return users.get_user(session, org_id=_org_id(session, principal, org), ident=ident)


@router.patch("/{ident}", response_model=UserPublic)
def update_user(
    ident: Ident,
    body: UserUpdate,
    principal: UsersWriter,
    session: SessionDep,
    ctx: ContextDep,
    ip: ClientIpDep,
    org: OrgQuery = None,
) -> User:
    changes = body.model_dump(exclude_unset=True)
    org_id = _org_id(session, principal, org)
    current = users.get_user(session, org_id=org_id, ident=ident)
    ensure_role_assignable(principal, current.role)  # nobody edits a user above their own rank
    if changes.get("role"):
        ensure_role_assignable(principal, changes["role"])
    row = users.update_user(session, org_id=org_id, ident=ident, changes=changes)
    audit.record(
        session,
        principal=principal,
        action="users.update",
        target=row.username,
        client_ip=ip,
        details={"changed": sorted(changes)},
    )
    session.commit()
    ctx.invalidator.notify(user_id=row.id)
    return row


@router.delete("/{ident}", status_code=204)
def delete_user(
    ident: Ident,
    principal: UsersWriter,
    session: SessionDep,
    ctx: ContextDep,
    ip: ClientIpDep,
    org: OrgQuery = None,
) -> None:
    org_id = _org_id(session, principal, org)
    ensure_role_assignable(principal, users.get_user(session, org_id=org_id, ident=ident).role)
    row = users.delete_user(session, org_id=org_id, ident=ident)
    audit.record(session, principal=principal, action="users.delete", target=row.username, client_ip=ip)
    session.commit()
    ctx.invalidator.notify(user_id=row.id)


@router.delete("/{ident}/sessions", status_code=204)
def end_user_sessions(
    ident: Ident,
    principal: UsersWriter,
    session: SessionDep,
    ctx: ContextDep,
    ip: ClientIpDep,
    org: OrgQuery = None,
) -> None:
    """End every browser session of a user at once (e.g. a lost laptop)."""
    org_id = _org_id(session, principal, org)
    row = users.get_user(session, org_id=org_id, ident=ident)
    ensure_role_assignable(principal, row.role)
    ended = sessions.end_user_sessions(session, user_id=row.id)
    audit.record(
        session,
        principal=principal,
        action="users.sessions_end",
        target=row.username,
        client_ip=ip,
        details={"ended": ended},
    )
    session.commit()
    ctx.invalidator.notify(user_id=row.id)
