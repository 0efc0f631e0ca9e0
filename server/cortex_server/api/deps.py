"""FastAPI dependencies: the app context, a DB session, the calling principal and its scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cortex_server.context import AppContext
from cortex_server.core.auth import Principal
from cortex_server.db.engine import database_unavailable
from cortexctl.core.errors import AuthenticationError, PermissionDenied


async def get_context(request: Request) -> AppContext:  # async: FastAPI runs sync deps in a thread
    ctx: AppContext = request.app.state.cortex
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(ctx: ContextDep) -> Iterator[Session]:
    session = ctx.session_factory()
    try:
        yield session
        session.commit()
    except OperationalError as exc:
        session.rollback()
        raise database_unavailable(ctx.engine, exc) from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def get_principal(request: Request, ctx: ContextDep) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise AuthenticationError(
            "Missing API key.", fix="Send it as 'Authorization: Bearer <key>'; create one with `cortexctl keys create`."
        )
    hit, principal = ctx.authenticator.cached(token)  # hot path: no thread hop on a cache hit
    if hit:
        if principal is None:
            raise AuthenticationError("Invalid, revoked or expired API key.", fix="Check the key or create a new one.")
        return principal
    try:
        principal = await run_in_threadpool(ctx.authenticator.authenticate, token)
    except OperationalError as exc:
        raise database_unavailable(ctx.engine, exc) from None
    if principal is None:
        raise AuthenticationError("Invalid, revoked or expired API key.", fix="Check the key or create a new one.")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_scope(scope: str) -> Callable[..., object]:
    """Dependency that admits only principals holding `scope` (or `admin`)."""

    async def check(principal: PrincipalDep) -> Principal:
        if not principal.has_scope(scope):
            raise PermissionDenied(
                f"This API key lacks the '{scope}' scope.", fix="Use a key that has it, or ask an admin to add it."
            )
        return principal

    check.required_scope = scope  # type: ignore[attr-defined]  # read by the route-scope test
    return check


def require_any_scope(*scopes: str) -> Callable[..., object]:
    """Dependency that admits principals holding any of `scopes` (or `admin`)."""

    async def check(principal: PrincipalDep) -> Principal:
        if not any(principal.has_scope(s) for s in scopes):
            raise PermissionDenied(
                f"This API key lacks one of the scopes {', '.join(scopes)}.",
                fix="Use a key that has one, or ask an admin to add it.",
            )
        return principal

    check.required_scope = scopes[0]  # type: ignore[attr-defined]  # read by the route-scope test
    check.accepted_scopes = scopes  # type: ignore[attr-defined]
    return check


AdminPrincipal = Annotated[Principal, Depends(require_scope("admin"))]
InferencePrincipal = Annotated[Principal, Depends(require_scope("inference"))]
ModelsReader = Annotated[Principal, Depends(require_any_scope("models:read", "inference"))]
KeysWriter = Annotated[Principal, Depends(require_scope("keys:write"))]
