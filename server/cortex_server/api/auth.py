"""/auth/*: browser sessions (login, logout, password change) and who-am-I."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from cortex_server.api.deps import (
    ClientIpDep,
    ContextDep,
    PrincipalDep,
    SessionDep,
    SessionPrincipal,
    check_ip,
    public_route,
    request_is_https,
)
from cortex_server.core.auth import Principal, password_version
from cortex_server.core.sessions import CSRF_COOKIE, SESSION_COOKIE
from cortex_server.db.models import Organization
from cortex_server.schemas.access import Login, Me, PasswordChange
from cortex_server.services import audit, users

router = APIRouter(prefix="/auth", tags=["auth"])


def _me(principal: Principal, *, org_name: str | None = None, csrf: str | None = None) -> Me:
    return Me(
        kind=principal.kind,
        name=principal.name,
        org_id=principal.org_id,
        org=org_name or principal.org_name,
        role=principal.role,
        scopes=sorted(principal.scopes),
        operator=principal.is_operator,
        csrf_token=csrf or principal.csrf_token,
    )


def _set_cookies(response: Response, request: Request, ctx: ContextDep, *, token: str, csrf: str) -> None:
    secure = request_is_https(request)
    max_age = ctx.sessions.max_age_s
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/"
    )
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=max_age, httponly=False, samesite="strict", secure=secure, path="/"
    )


@router.post("/login", response_model=Me, dependencies=[Depends(public_route)])
def login(
    body: Login, request: Request, response: Response, session: SessionDep, ctx: ContextDep, ip: ClientIpDep
):
    user = users.login(session, username=body.username, password=body.password)
    org = session.get(Organization, user.org_id)
    token, data = ctx.sessions.issue(user_id=user.id, pw_version=password_version(user.password_hash))
    principal = ctx.authenticator.authenticate_user(user_id=user.id, pw_version=data.pw_version)
    assert principal is not None  # just verified
    check_ip(request, principal)  # the org's allowlist binds logins too
    audit.record(session, principal=principal, action="auth.login", target=user.username, client_ip=ip)
    session.commit()
    _set_cookies(response, request, ctx, token=token, csrf=data.csrf)
    return _me(principal, org_name=org.name if org else None, csrf=data.csrf)


@router.post("/logout", status_code=204)
def logout(principal: SessionPrincipal, response: Response, session: SessionDep, ip: ClientIpDep) -> None:
    audit.record(session, principal=principal, action="auth.logout", target=principal.name, client_ip=ip)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.post("/password", response_model=Me)
def change_password(
    body: PasswordChange,
    request: Request,
    response: Response,
    principal: SessionPrincipal,
    session: SessionDep,
    ctx: ContextDep,
    ip: ClientIpDep,
):
    """Change your own password. Every other session of this user ends; this one gets a new cookie."""
    assert principal.user_id is not None
    user = users.change_password(
        session, user_id=principal.user_id, current=body.current_password, new=body.new_password
    )
    audit.record(session, principal=principal, action="auth.password", target=user.username, client_ip=ip)
    session.commit()
    ctx.invalidator.notify()
    token, data = ctx.sessions.issue(user_id=user.id, pw_version=password_version(user.password_hash))
    _set_cookies(response, request, ctx, token=token, csrf=data.csrf)
    return _me(principal, csrf=data.csrf)


@router.get("/me", response_model=Me)
def me(principal: PrincipalDep) -> Me:
    return _me(principal)
