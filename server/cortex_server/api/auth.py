"""/auth/*: browser sessions (login, logout, password change, list and end your sessions), who-am-I.

Login is async on purpose: throttling answers before any password work, and the password
check waits for one of a few slots on the event loop (LoginGate), not in a worker thread,
so a login flood neither grows memory (argon2 is 64 MiB a check) nor starves admin routes.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

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
from cortex_server.context import AppContext
from cortex_server.core.auth import Principal
from cortex_server.core.sessions import CSRF_COOKIE, SESSION_COOKIE
from cortex_server.db.models import Organization, User
from cortex_server.schemas.access import Login, Me, PasswordChange, SessionPublic
from cortex_server.services import audit, sessions, users
from cortexctl.core.errors import AuthenticationError, CortexError

router = APIRouter(prefix="/auth", tags=["auth"])
MAX_ID = 2**31 - 1


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


def _set_cookies(response: Response, request: Request, ctx: AppContext, *, token: str, csrf: str) -> None:
    secure = request_is_https(request)
    max_age = ctx.sessions.max_age_s
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/"
    )
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=max_age, httponly=False, samesite="strict", secure=secure, path="/"
    )


def _start_session(
    session: SessionDep, ctx: AppContext, request: Request, *, user: User, ip: str | None
) -> tuple[str, str, str]:
    """A new session record for `user`: (cookie, csrf token, session id). The caller commits."""
    token, data = ctx.sessions.issue()
    sessions.create_session(
        session,
        user_id=user.id,
        sid=data.sid,
        ttl_s=ctx.settings.session_ttl_s,
        client_ip=ip,
        user_agent=request.headers.get("user-agent"),
    )
    return token, data.csrf, data.sid


@router.post("/login", response_model=Me, dependencies=[Depends(public_route)])
async def login(
    body: Login, request: Request, response: Response, session: SessionDep, ctx: ContextDep, ip: ClientIpDep
) -> Me:
    await ctx.login_throttle.check(username=body.username, ip=ip)
    async with ctx.login_gate.slot():
        try:
            user = await run_in_threadpool(
                users.login, session, username=body.username, password=body.password
            )
        except AuthenticationError:
            await ctx.login_throttle.failed(username=body.username, ip=ip)
            raise
    await ctx.login_throttle.succeeded(username=body.username)

    def finish() -> tuple[Me, str, str]:
        org = session.get(Organization, user.org_id)
        token, csrf, sid = _start_session(session, ctx, request, user=user, ip=ip)
        session.commit()
        principal = ctx.authenticator.authenticate_session(sid)
        if principal is None:  # e.g. deactivated between the two reads
            raise AuthenticationError("Wrong username or password.", fix="Check them and retry.")
        try:
            check_ip(request, principal)  # the org's allowlist binds logins too
        except CortexError:
            assert principal.session_id is not None
            sessions.end_session(session, user_id=user.id, session_id=principal.session_id)
            session.commit()
            raise
        audit.record(session, principal=principal, action="auth.login", target=user.username, client_ip=ip)
        session.commit()
        return _me(principal, org_name=org.name if org else None, csrf=csrf), token, csrf

    me_out, token, csrf = await run_in_threadpool(finish)
    _set_cookies(response, request, ctx, token=token, csrf=csrf)
    return me_out


@router.post("/logout", status_code=204)
def logout(
    principal: SessionPrincipal, response: Response, session: SessionDep, ctx: ContextDep, ip: ClientIpDep
) -> None:
    """End this session on the server (the cookie stops working everywhere) and drop the cookies."""
    assert principal.user_id is not None and principal.session_id is not None
    sessions.end_session(session, user_id=principal.user_id, session_id=principal.session_id)
    audit.record(session, principal=principal, action="auth.logout", target=principal.name, client_ip=ip)
    session.commit()
    ctx.invalidator.notify(user_id=principal.user_id)
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
) -> Me:
    """Change your own password. Every session of this user ends; this caller gets a new one."""
    assert principal.user_id is not None
    user = users.change_password(
        session, user_id=principal.user_id, current=body.current_password, new=body.new_password
    )
    token, csrf, _ = _start_session(session, ctx, request, user=user, ip=ip)
    audit.record(session, principal=principal, action="auth.password", target=user.username, client_ip=ip)
    session.commit()
    ctx.invalidator.notify(user_id=principal.user_id)
    _set_cookies(response, request, ctx, token=token, csrf=csrf)
    return _me(principal, csrf=csrf)


@router.get("/sessions", response_model=list[SessionPublic])
def list_my_sessions(principal: SessionPrincipal, session: SessionDep) -> list[SessionPublic]:
    """Your live sessions; `current` marks the one making this call."""
    assert principal.user_id is not None
    return [
        SessionPublic.model_validate(row).model_copy(update={"current": row.id == principal.session_id})
        for row in sessions.list_sessions(session, user_id=principal.user_id)
    ]


@router.delete("/sessions/{session_id}", status_code=204)
def end_my_session(
    principal: SessionPrincipal,
    session: SessionDep,
    ctx: ContextDep,
    ip: ClientIpDep,
    session_id: int = Path(ge=1, le=MAX_ID),
) -> None:
    """End one of your sessions (e.g. a browser you left logged in elsewhere)."""
    assert principal.user_id is not None
    sessions.end_session(session, user_id=principal.user_id, session_id=session_id)
    audit.record(
        session, principal=principal, action="auth.session_end", target=str(session_id), client_ip=ip
    )
    session.commit()
    ctx.invalidator.notify(user_id=principal.user_id)


@router.get("/me", response_model=Me)
def me(principal: PrincipalDep) -> Me:
    return _me(principal)
