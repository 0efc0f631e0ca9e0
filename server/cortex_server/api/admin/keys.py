"""/admin/keys: create (plaintext once), list, show, update, revoke, delete — always inside one org."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cortex_server.api.deps import ClientIpDep, ContextDep, KeysWriter, SessionDep
from cortex_server.core.auth import Principal
from cortex_server.schemas.keys import KeyCreate, KeyCreated, KeyPublic, KeyUpdate
from cortex_server.services import audit, keys, orgs
from cortex_server.services.policy import ensure_grantable, target_org

router = APIRouter(prefix="/admin/keys", tags=["admin: keys"])
OrgQuery = Annotated[str | None, Query(description="org name or id (operators only)")]


def _org_id(session: SessionDep, principal: Principal, org: str | None) -> int:
    if org is None:
        return principal.org_id
    return target_org(principal, orgs.get_org(session, ident=org).id if principal.is_operator else -1)


@router.post("", response_model=KeyCreated, status_code=201)
def create_key(body: KeyCreate, principal: KeysWriter, session: SessionDep, ctx: ContextDep, ip: ClientIpDep):
    ensure_grantable(principal, body.scopes)
    org_id = _org_id(session, principal, body.org)
    created = keys.create_key(
        session,
        secret=ctx.secret,
        org_id=org_id,
        name=body.name,
        scopes=body.scopes,
        user_id=principal.user_id,
        expires_at=body.expires_at,
        allowed_models=body.allowed_models,
        allowed_ips=body.allowed_ips,
        rpm_limit=body.rpm_limit,
        tpm_limit=body.tpm_limit,
        max_concurrent=body.max_concurrent,
    )
    audit.record(
        session,
        principal=principal,
        action="keys.create",
        target=body.name,
        client_ip=ip,
        details={"scopes": created.row.scopes, "org_id": org_id},
    )
    session.commit()
    return KeyCreated(**KeyPublic.model_validate(created.row).model_dump(), key=created.plaintext)


@router.get("", response_model=list[KeyPublic])
def list_keys(principal: KeysWriter, session: SessionDep, org: OrgQuery = None):
    return keys.list_keys(session, org_id=_org_id(session, principal, org))


@router.get("/{ident}", response_model=KeyPublic)
def show_key(ident: str, principal: KeysWriter, session: SessionDep, org: OrgQuery = None):
    return keys.get_key(session, org_id=_org_id(session, principal, org), ident=ident)


@router.patch("/{ident}", response_model=KeyPublic)
def update_key(
    ident: str,
    body: KeyUpdate,
    principal: KeysWriter,
    session: SessionDep,
    ctx: ContextDep,
    ip: ClientIpDep,
    org: OrgQuery = None,
):
    changes = body.model_dump(exclude_unset=True)
    if "scopes" in changes:
        ensure_grantable(principal, changes["scopes"] or [])
    row = keys.update_key(session, org_id=_org_id(session, principal, org), ident=ident, changes=changes)
    audit.record(
        session,
        principal=principal,
        action="keys.update",
        target=row.name,
        client_ip=ip,
        details={"changed": sorted(changes)},
    )
    session.commit()
    ctx.invalidator.notify()
    return row


@router.post("/{ident}/revoke", response_model=KeyPublic)
def revoke_key(
    ident: str,
    principal: KeysWriter,
    session: SessionDep,
    ctx: ContextDep,
    ip: ClientIpDep,
    org: OrgQuery = None,
):
    row = keys.revoke_key(session, org_id=_org_id(session, principal, org), ident=ident)
    audit.record(session, principal=principal, action="keys.revoke", target=row.name, client_ip=ip)
    session.commit()
    ctx.invalidator.notify()
    return row


@router.delete("/{ident}", status_code=204)
def delete_key(
    ident: str,
    principal: KeysWriter,
    session: SessionDep,
    ctx: ContextDep,
    ip: ClientIpDep,
    org: OrgQuery = None,
) -> None:
    row = keys.delete_key(session, org_id=_org_id(session, principal, org), ident=ident)
    audit.record(session, principal=principal, action="keys.delete", target=row.name, client_ip=ip)
    session.commit()
    ctx.invalidator.notify()
