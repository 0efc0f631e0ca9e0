"""/admin/keys: create (plaintext once), list, show, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Request

from cortex_server.api.deps import ContextDep, KeysWriter, SessionDep
from cortex_server.schemas.keys import KeyCreate, KeyCreated, KeyPublic
from cortex_server.services import audit, keys

router = APIRouter(prefix="/admin/keys", tags=["admin: keys"])


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("", response_model=KeyCreated, status_code=201)
def create_key(body: KeyCreate, request: Request, principal: KeysWriter, session: SessionDep, ctx: ContextDep):
    created = keys.create_key(
        session,
        secret=ctx.secret,
        org_id=principal.org_id,
        name=body.name,
        scopes=body.scopes,
        user_id=principal.user_id,
        expires_at=body.expires_at,
    )
    audit.record(
        session,
        principal=principal,
        action="keys.create",
        target=body.name,
        client_ip=_client_ip(request),
        details={"scopes": created.row.scopes},
    )
    return KeyCreated(**KeyPublic.model_validate(created.row).model_dump(), key=created.plaintext)


@router.get("", response_model=list[KeyPublic])
def list_keys(principal: KeysWriter, session: SessionDep):
    return keys.list_keys(session, org_id=principal.org_id)


@router.get("/{ident}", response_model=KeyPublic)
def show_key(ident: str, principal: KeysWriter, session: SessionDep):
    return keys.get_key(session, org_id=principal.org_id, ident=ident)


@router.post("/{ident}/revoke", response_model=KeyPublic)
def revoke_key(ident: str, request: Request, principal: KeysWriter, session: SessionDep, ctx: ContextDep):
    row = keys.revoke_key(session, org_id=principal.org_id, ident=ident)
    audit.record(session, principal=principal, action="keys.revoke", target=row.name, client_ip=_client_ip(request))
    session.flush()
    ctx.authenticator.invalidate()
    return row
