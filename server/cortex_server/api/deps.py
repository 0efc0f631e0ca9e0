"""FastAPI dependencies: the app context, a DB session, the calling principal and its access.

Every route declares its access through one of these dependencies, each carrying an `access`
attribute that tests/access/test_every_route.py reads:
  - `public_route`                      no credentials (health, login)
  - `require_scope(scope)`              a key or a session holding `scope` (or `admin`)
  - `require_scope(scope, operator=True)` … and belonging to the default org's admins
  - `require_authenticated`             any principal (e.g. /auth/me)
  - `require_session`                   a browser session only (logout, password change)
  - `require_inference`                 keys only, scope `inference` (the route then calls the
                                        gateway's admission service for allow-list and rate limits)
  - `require_inference_key`             keys only, scope `inference` or `models:read` (GET /v1/models)
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cortex_server.context import AppContext
from cortex_server.core.auth import Principal
from cortex_server.core.sessions import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, csrf_matches
from cortex_server.db.engine import database_unavailable
from cortex_server.services.gateway.admission import INFERENCE_SCOPE, NO_CREDENTIALS, bearer_token
from cortex_server.services.netaccess import forwarded_https
from cortexctl.core.errors import AuthenticationError, PermissionDenied

log = logging.getLogger(__name__)


def context_of(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.cortex
    return ctx


async def get_context(request: Request) -> AppContext:
    # async on purpose: FastAPI runs sync dependencies in a thread pool, a hop per request
    return context_of(request)


ContextDep = Annotated[AppContext, Depends(get_context)]


def _mark_unsaved(session: Session, _flush_context: object) -> None:
    session.info["unsaved"] = True


def _mark_saved(session: Session) -> None:
    session.info.pop("unsaved", None)


def get_session(ctx: ContextDep) -> Iterator[Session]:
    """A session for one request. Writes commit explicitly, before the response (never here: this
    teardown may run after the response is sent, and then the next request would not see them)."""
    session = ctx.session_factory()
    event.listen(session, "after_flush", _mark_unsaved)
    event.listen(session, "after_commit", _mark_saved)
    try:
        yield session
        if session.new or session.dirty or session.deleted or session.info.get("unsaved"):
            log.error("a route left uncommitted changes; they are discarded (commit before answering)")
    except OperationalError as exc:
        session.rollback()
        raise database_unavailable(ctx.engine, exc) from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def request_ip(request: Request) -> str | None:
    """The client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy."""
    return context_of(request).admission.client_ip(request)


def request_is_https(request: Request) -> bool:
    ctx: AppContext = request.app.state.cortex
    if request.url.scheme == "https":
        return True
    return forwarded_https(
        peer=request.client.host if request.client else None,
        forwarded_proto=request.headers.get("x-forwarded-proto"),
        trusted_proxies=ctx.settings.trusted_proxies,
    )


ClientIpDep = Annotated[str | None, Depends(request_ip)]


async def _session_principal(request: Request, ctx: AppContext, cookie: str) -> Principal:
    data = ctx.sessions.load(cookie)
    principal = None
    if data is not None:
        try:
            principal = await run_in_threadpool(ctx.authenticator.authenticate_session, data.sid)
        except OperationalError as exc:
            raise database_unavailable(ctx.engine, exc) from None
    if data is None or principal is None:
        raise AuthenticationError(
            "Your session is invalid or has expired.", fix="Log in again.", code="invalid_session"
        )
    if request.method not in SAFE_METHODS and not csrf_matches(data.csrf, request.headers.get(CSRF_HEADER)):
        raise PermissionDenied(
            "Missing or wrong CSRF token.",
            fix="Send the csrf_token from /auth/login or /auth/me in the X-CSRF-Token header.",
            code="csrf_failed",
        )
    return dataclasses.replace(principal, csrf_token=data.csrf)


def check_ip(request: Request, principal: Principal) -> None:
    context_of(request).admission.check_ip(request, principal)


async def authenticate(request: Request, *, keys: bool = True, sessions: bool = True) -> Principal:
    ctx = context_of(request)
    token = bearer_token(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if token is not None and keys:
        principal = await ctx.admission.key_principal(request, token)
    elif cookie and sessions:
        principal = await _session_principal(request, ctx, cookie)
    elif not keys:
        raise AuthenticationError(
            "This route needs a browser session.", fix="Log in through POST /auth/login."
        )
    else:
        raise AuthenticationError(
            "Missing credentials.", fix=NO_CREDENTIALS + ("; or log in" if sessions else ".")
        )
    ctx.admission.check_ip(request, principal)
    return principal


def _declare(check: Callable[..., Any], **access: Any) -> Callable[..., Any]:
    declared = {"scope": None, "operator": False, "keys": True, "sessions": True, "public": False, **access}
    declared.setdefault("scopes", (declared["scope"],) if declared["scope"] else None)  # any of these
    setattr(check, "access", declared)  # noqa: B010 - read by tests/access/test_every_route.py
    return check


async def _public() -> None:
    return None


public_route = _declare(_public, public=True)


async def get_principal(request: Request) -> Principal:
    return await authenticate(request)


require_authenticated = _declare(get_principal)
PrincipalDep = Annotated[Principal, Depends(require_authenticated)]


async def _session_only(request: Request) -> Principal:
    return await authenticate(request, keys=False)


require_session = _declare(_session_only, keys=False)
SessionPrincipal = Annotated[Principal, Depends(require_session)]


def require_scope(scope: str, *, operator: bool = False) -> Callable[..., object]:
    """Dependency that admits only principals holding `scope` (or `admin`); operator: default-org admins."""

    async def check(request: Request) -> Principal:
        principal = await authenticate(request)
        if not principal.has_scope(scope):
            raise PermissionDenied(
                f"This {principal.kind} lacks the '{scope}' scope.",
                fix="Use a key that has it, or ask an admin.",
            )
        if operator and not principal.is_operator:
            raise PermissionDenied(
                "Only the appliance operators (admins of the default organization) may do this.",
                fix="Ask an operator.",
            )
        return principal

    return _declare(check, scope=scope, operator=operator)


AdminPrincipal = Annotated[Principal, Depends(require_scope("admin"))]
OperatorPrincipal = Annotated[Principal, Depends(require_scope("admin", operator=True))]
KeysWriter = Annotated[Principal, Depends(require_scope("keys:write"))]
UsersWriter = Annotated[Principal, Depends(require_scope("users:write"))]
UsageReader = Annotated[Principal, Depends(require_scope("usage:read"))]
# Models and recipes are appliance-wide (no org column): only operators (default-org admins) change them.
ModelsWriter = Annotated[Principal, Depends(require_scope("models:write", operator=True))]


# ---- inference ----------------------------------------------------------------------
# Both only authenticate (key, scope, IP): the gateway's admission service, which they call,
# also owns the rate-limit lease, and the /v1 routes call it for that (api/openai/forwarding.py).


async def _inference_key(request: Request) -> Principal:
    return await context_of(request).admission.authenticate(request)


require_inference = _declare(_inference_key, scope=INFERENCE_SCOPE, sessions=False)
InferenceDep = Annotated[Principal, Depends(require_inference)]


_MODEL_READ_SCOPES = (INFERENCE_SCOPE, "models:read")


async def _model_reader_key(request: Request) -> Principal:
    return await context_of(request).admission.authenticate(request, scopes=_MODEL_READ_SCOPES)


# For /v1 reads that reach no engine (GET /v1/models): key + either scope + IP, no rate limit.
require_inference_key = _declare(
    _model_reader_key, scope=_MODEL_READ_SCOPES[0], scopes=_MODEL_READ_SCOPES, sessions=False
)
InferenceKeyDep = Annotated[Principal, Depends(require_inference_key)]
