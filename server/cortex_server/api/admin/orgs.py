"""/admin/orgs: operators manage every org; other admins see only their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from cortex_server.api.deps import AdminPrincipal, ClientIpDep, ContextDep, OperatorPrincipal, SessionDep
from cortex_server.db.models import Organization
from cortex_server.schemas.access import OrgCreate, OrgPublic, OrgUpdate
from cortex_server.schemas.keys import IDENT_MAX
from cortex_server.services import audit, orgs
from cortexctl.core.errors import NotFound

router = APIRouter(prefix="/admin/orgs", tags=["admin: orgs"])
Ident = Annotated[str, Path(min_length=1, max_length=IDENT_MAX, description="org id or name")]


@router.post("", response_model=OrgPublic, status_code=201)
def create_org(
    body: OrgCreate, principal: OperatorPrincipal, session: SessionDep, ip: ClientIpDep
) -> Organization:
    org = orgs.create_org(session, **body.model_dump())
    audit.record(session, principal=principal, action="orgs.create", target=org.name, client_ip=ip)
    session.commit()
    return org


@router.get("", response_model=list[OrgPublic])
def list_orgs(principal: AdminPrincipal, session: SessionDep) -> list[Organization]:
    return orgs.list_orgs(session, only_id=None if principal.is_operator else principal.org_id)


@router.get("/{ident}", response_model=OrgPublic)
def show_org(ident: Ident, principal: AdminPrincipal, session: SessionDep) -> Organization:
    org = orgs.get_org(session, ident=ident)
    if not principal.is_operator and org.id != principal.org_id:
        raise NotFound(f"No organization {ident!r}.", fix="List them with `cortexctl orgs list`.")
    return org


@router.patch("/{ident}", response_model=OrgPublic)
def update_org(
    ident: Ident,
    body: OrgUpdate,
    principal: OperatorPrincipal,
    session: SessionDep,
    ctx: ContextDep,
    ip: ClientIpDep,
) -> Organization:
    changes = body.model_dump(exclude_unset=True)
    org = orgs.update_org(session, ident=ident, changes=changes)
    audit.record(
        session,
        principal=principal,
        action="orgs.update",
        target=org.name,
        client_ip=ip,
        details={"changed": sorted(changes)},
    )
    session.commit()
    ctx.invalidator.notify(org_id=org.id)
    return org


@router.delete("/{ident}", status_code=204)
def delete_org(
    ident: Ident, principal: OperatorPrincipal, session: SessionDep, ctx: ContextDep, ip: ClientIpDep
) -> None:
    org = orgs.delete_org(session, ident=ident)
    audit.record(session, principal=principal, action="orgs.delete", target=org.name, client_ip=ip)
    session.commit()
    ctx.invalidator.notify(org_id=org.id)
