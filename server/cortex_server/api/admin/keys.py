"""/admin/keys: create (plaintext once), list, show, update, revoke, delete — always inside one org.

Every write is bounded by its caller (services/policy.py): a new or changed key never exceeds
the principal making it, and members and keys:write keys touch only the keys they created.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from cortex_server.api.deps import ClientIpDep, ContextDep, KeysWriter, SessionDep
from cortex_server.core.auth import Principal
from cortex_server.db.models import ApiKey
from cortex_server.schemas.keys import IDENT_MAX, KeyCreate, KeyCreated, KeyPublic, KeyUpdate
from cortex_server.services import audit, keys, orgs
from cortex_server.services.policy import ensure_key_within, ensure_manages_key, key_fields, target_org

router = APIRouter(prefix="/admin/keys", tags=["admin: keys"])
OrgQuery = Annotated[str | None, Query(max_length=IDENT_MAX, description="org name or id (operators only)")]
Ident = Annotated[str, Path(min_length=1, max_length=IDENT_MAX, description="key id or name")]


def _org_id(session: SessionDep, principal: Principal, org: str | None) -> int:
    if org is None:
        return principal.org_id
    return target_org(principal, orgs.get_org(session, ident=org).id if principal.is_operator else -1)


def _managed_key(session: SessionDep, principal: Principal, org: str | None, ident: str) -> ApiKey:
    row = keys.get_key(session, org_id=_org_id(session, principal, org), ident=ident)
    ensure_manages_key(principal, row)
    return row


@router.post("", response_model=KeyCreated, status_code=201)
def create_key(
    body: KeyCreate, principal: KeysWriter, session: SessionDep, ctx: ContextDep, ip: ClientIpDep
) -> KeyCreated:
    fields = keys.normalize(body.model_dump(exclude={"name", "org"}))
    ensure_key_within(principal, fields)
    org_id = _org_id(session, principal, body.org)
    created = keys.create_key(
        session,
        secret=ctx.secret,
        org_id=org_id,
        name=body.name,
        user_id=principal.user_id,
        created_by_key_id=principal.key_id,
        **fields,
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
def list_keys(principal: KeysWriter, session: SessionDep, org: OrgQuery = None) -> list[ApiKey]:
    return keys.list_keys(session, org_id=_org_id(session, principal, org))


@router.get("/{ident}", response_model=KeyPublic)
def show_key(ident: Ident, principal: KeysWriter, session: SessionDep, org: OrgQuery = None) -> ApiKey:
    return keys.get_key(session, org_id=_org_id(session, principal, org), ident=ident)


@router.patch("/{ident}", response_model=KeyPublic)
def update_key(
    ident: Ident,
    body: KeyUpdate,
    principal: KeysWriter,
    session: SessionDep,
    ctx: ContextDep,
    ip: ClientIpDep,
    org: OrgQuery = None,
) -> ApiKey:
    changes = keys.normalize(body.model_dump(exclude_unset=True))
    row = _managed_key(session, principal, org, ident)
    ensure_key_within(principal, {**key_fields(row), **changes})  # the key as it would be
    row = keys.update_key(session, row=row, changes=changes)
    audit.record(
        session,
        principal=principal,
        action="keys.update",
        target=row.name,
        client_ip=ip,
        details={"changed": sorted(changes)},
    )
    session.commit()
    ctx.invalidator.notify(key_id=row.id)
    return row


@router.post("/{ident}/revoke", response_model=KeyPublic)
def revoke_key(
    ident: Ident,
    principal: KeysWriter,
    session: SessionDep,
    ctx: ContextDep,
    ip: ClientIpDep,
    org: OrgQuery = None,
) -> ApiKey:
    row = keys.revoke_key(session, row=_managed_key(session, principal, org, ident))
    audit.record(session, principal=principal, action="keys.revoke", target=row.name, client_ip=ip)
    session.commit()
    ctx.invalidator.notify(key_id=row.id)
    return row


@router.delete("/{ident}", status_code=204)
def delete_key(
    ident: Ident,
    principal: KeysWriter,
    session: SessionDep,
    ctx: ContextDep,
    ip: ClientIpDep,
    org: OrgQuery = None,
) -> None:
    row = keys.delete_key(session, row=_managed_key(session, principal, org, ident))
    audit.record(session, principal=principal, action="keys.delete", target=row.name, client_ip=ip)
    session.commit()
    ctx.invalidator.notify(key_id=row.id)
