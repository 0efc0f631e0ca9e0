"""FastAPI dependencies: the app context, a DB session, the calling principal and its access.

Every route declares its access through one of these dependencies, each carrying an `access`
attribute that tests/access/test_every_route.py reads:
  - `public_route`                      no credentials (health, login)
  - `require_scope(scope)`              a key or a session holding `scope` (or `admin`)
  - `require_scope(scope, operator=True)` … and belonging to the default org's admins
  - `require_authenticated`             any principal (e.g. /auth/me)
  - `require_session`                   a browser session only (logout, password change)
  - `require_inference`                 keys only, scope `inference`, model allow-list, rate limits
  - `require_inference_key`             keys only, scope `inference` or `models:read` (GET /v1/models)
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cortex_server.context import AppContext
from cortex_server.core.auth import Principal, retry_seconds
from cortex_server.core.sessions import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, csrf_matches
from cortex_server.db.engine import database_unavailable
from cortex_server.services.admission import estimate_tokens, tightest_tpm
from cortex_server.services.netaccess import client_ip, forwarded_https, ip_allowed
from cortex_server.services.ratelimit import RateLimiter
from cortexctl.core.errors import AuthenticationError, InvalidRequest, PermissionDenied, RateLimited


def context_of(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.cortex
    return ctx


async def get_context(request: Request) -> AppContext:
    # async on purpose: FastAPI runs sync dependencies in a thread pool, a hop per request
    return context_of(request)


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


def request_ip(request: Request) -> str | None:
    """The client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy."""
    cached = getattr(request.state, "client_ip", None)
    if cached is not None:
        return str(cached)
    ctx: AppContext = request.app.state.cortex
    ip = client_ip(
        peer=request.client.host if request.client else None,
        # every X-Forwarded-For line, in order: a proxy may add its own line instead of appending
        forwarded_for=",".join(request.headers.getlist("x-forwarded-for")) or None,
        trusted_proxies=ctx.settings.trusted_proxies,
    )
    request.state.client_ip = ip
    return ip


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


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


MAX_TOKEN_CHARS = 256  # our keys are 53 characters; longer is junk, refused without hashing
_NO_CREDENTIALS = "Send an API key as 'Authorization: Bearer <key>' (create one with `cortexctl keys create`)"


async def _key_principal(request: Request, ctx: AppContext, token: str) -> Principal:
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthenticationError("Invalid, revoked or expired API key.", fix="Check the key.")
    hit, principal = ctx.authenticator.cached(token)  # hot path: no thread hop on a cache hit
    if not hit:
        ip = request_ip(request)
        wait = ctx.authenticator.unknown_budget.retry_after_s(ip)
        # this address sent too many unknown keys lately: no database lookup for it
        if wait > 0 and not ctx.authenticator.known_valid(token):
            seconds = retry_seconds(wait)
            raise RateLimited(
                f"Too many invalid API keys from this address; retry after {seconds}s.",
                fix="Check the key you send.",
                retry_after_s=seconds,
                code="too_many_invalid_keys",
            )
        try:
            principal = await run_in_threadpool(ctx.authenticator.authenticate, token)
        except OperationalError as exc:
            raise database_unavailable(ctx.engine, exc) from None
        if principal is None:
            ctx.authenticator.unknown_budget.spend(ip)
    if principal is None:
        raise AuthenticationError(
            "Invalid, revoked or expired API key.", fix="Check the key or create a new one."
        )
    return principal


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
    ip = request_ip(request)
    if not ip_allowed(principal.allowed_ips, ip) or not ip_allowed(principal.org_allowed_ips, ip):
        raise PermissionDenied(
            f"Requests from {ip or 'an unknown address'} are not allowed for this {principal.kind}.",
            fix="Call from an allowed address, or ask an admin to extend the IP allowlist.",
            code="ip_not_allowed",
        )


async def authenticate(request: Request, *, keys: bool = True, sessions: bool = True) -> Principal:
    ctx = context_of(request)
    token = bearer_token(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if token is not None and keys:
        principal = await _key_principal(request, ctx, token)
    elif cookie and sessions:
        principal = await _session_principal(request, ctx, cookie)
    elif not keys:
        raise AuthenticationError(
            "This route needs a browser session.", fix="Log in through POST /auth/login."
        )
    else:
        raise AuthenticationError(
            "Missing credentials.", fix=_NO_CREDENTIALS + ("; or log in" if sessions else ".")
        )
    check_ip(request, principal)
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

    setattr(check, "required_scope", scope)  # noqa: B010 - kept for older callers
    return _declare(check, scope=scope, operator=operator)


AdminPrincipal = Annotated[Principal, Depends(require_scope("admin"))]
OperatorPrincipal = Annotated[Principal, Depends(require_scope("admin", operator=True))]
KeysWriter = Annotated[Principal, Depends(require_scope("keys:write"))]
UsersWriter = Annotated[Principal, Depends(require_scope("users:write"))]
UsageReader = Annotated[Principal, Depends(require_scope("usage:read"))]


# ---- inference ----------------------------------------------------------------------


@dataclass
class InferenceGrant:
    """An admitted inference request. The gateway calls `finish(tokens_used=…)` once it knows usage."""

    principal: Principal
    request_id: str
    model: str | None
    tokens_estimate: int
    headers: dict[str, str]  # x-ratelimit-*: copy onto a StreamingResponse
    limiter: RateLimiter
    body: dict[str, Any] | None = None  # the request's JSON object, decoded once here
    finished: bool = field(default=False)
    tokens_used: int | None = None  # set from the usage row as soon as the gateway knows it

    def record_usage(self, row: dict[str, Any]) -> None:
        """A gateway usage sink: remember the real token count for `finish`."""
        self.tokens_used = int(row.get("prompt_tokens") or 0) + int(row.get("completion_tokens") or 0)

    async def finish(self, *, tokens_used: int | None) -> None:
        if self.finished:
            return
        self.finished = True
        await self.limiter.finish(
            self.principal,
            request_id=self.request_id,
            tokens_estimate=self.tokens_estimate,
            tokens_used=tokens_used,
        )


_DENIED = {
    "requests": "Rate limit reached: too many requests per minute.",
    "tokens": "Rate limit reached: too many tokens per minute.",
    "concurrency": "Rate limit reached: too many concurrent requests.",
}


async def _inference(request: Request, response: Response) -> AsyncIterator[InferenceGrant]:
    ctx = context_of(request)
    principal = await authenticate(request, sessions=False)
    if not principal.has_scope("inference"):
        raise PermissionDenied("This API key lacks the 'inference' scope.", fix="Use a key that has it.")
    raw = await request.body()  # Starlette caches it
    try:
        decoded = orjson.loads(raw) if raw else None  # decoded once: the route reuses grant.body
    except orjson.JSONDecodeError:
        decoded = None  # the route answers 400 for it; here it just names no model
    body: dict[str, Any] = decoded if isinstance(decoded, dict) else {}
    model = body.get("model") if isinstance(body.get("model"), str) else None
    if model is not None and not principal.model_allowed(model):
        raise PermissionDenied(
            f"This API key may not use the model {model!r}.",
            fix=f"Use one of: {', '.join(principal.allowed_models)}.",
            code="model_not_allowed",
            param="model",
        )
    served = ctx.registry.get(model) if model is not None else None
    estimate = estimate_tokens(raw, body, path=request.url.path, served=served)
    tpm = tightest_tpm([principal.limits.tpm, principal.org_limits.tpm])
    if tpm is not None and estimate > tpm:
        raise InvalidRequest(
            f"This request needs about {estimate} tokens (prompt plus max_tokens for every completion), "
            f"more than the {tpm} tokens per minute this key may use: it can never be admitted.",
            fix="Send a smaller max_tokens or fewer prompts, or ask an admin to raise the tokens/min limit.",
            code="exceeds_token_limit",
            param="max_tokens",
        )
    request_id = uuid.uuid4().hex
    decision = await ctx.rate_limiter.check(principal, tokens_estimate=estimate, request_id=request_id)
    if not decision.allowed:
        seconds = retry_seconds(decision.retry_after_s)
        raise RateLimited(
            _DENIED.get(decision.denied_by or "", "Rate limit reached."),
            fix=f"Retry after {seconds}s, or ask an admin to raise the limit.",
            retry_after_s=seconds,
            details={"headers": decision.headers, "limit": decision.denied_by},
        )
    response.headers.update(decision.headers)
    grant = InferenceGrant(
        principal=principal,
        request_id=request_id,
        model=model,
        tokens_estimate=estimate,
        headers=decision.headers,
        limiter=ctx.rate_limiter,
        body=decoded if isinstance(decoded, dict) else None,
    )
    try:
        yield grant
    finally:
        # frees the slot and reconciles tokens; runs after the response (streams: after the last chunk)
        await grant.finish(tokens_used=grant.tokens_used)


require_inference = _declare(_inference, scope="inference", sessions=False)
InferenceDep = Annotated[InferenceGrant, Depends(require_inference)]


_MODEL_READ_SCOPES = ("inference", "models:read")


async def _model_reader_key(request: Request) -> Principal:
    principal = await authenticate(request, sessions=False)
    if not any(principal.has_scope(s) for s in _MODEL_READ_SCOPES):
        raise PermissionDenied(
            "This API key lacks the 'inference' or 'models:read' scope.", fix="Use a key that has one."
        )
    return principal


# For /v1 reads that reach no engine (GET /v1/models): key + either scope + IP, no rate limit.
require_inference_key = _declare(
    _model_reader_key, scope=_MODEL_READ_SCOPES[0], scopes=_MODEL_READ_SCOPES, sessions=False
)
InferenceKeyDep = Annotated[Principal, Depends(require_inference_key)]
