"""One inference request's admission, from its first header to its last byte.

Who calls (API key, scope, IP allowlist), what it may use (model allow-list, tokens per
minute), the rate-limit lease, the usage that reconciles the lease, and the lease's end all
live here, so one owner opens and closes the lease (before, the API layer took it, the gateway
reported usage back through a callback and FastAPI's dependency teardown released it — after
the response only on FastAPI >= 0.118).

One request id names the request everywhere: the lease, the `x-request-id` header and the
usage row. The lease ends in `serve`: for a complete answer before it is returned (the client
that has the answer can use the slot at once), for a stream after its last byte
(`LeasedResponse`), whatever the framework does with dependencies.

    principal = await admission.authenticate(request)          # the route's declared access
    ticket = await admission.admit(principal, raw=raw, payload=payload, path=...)
    return await admission.serve(ticket, work)                  # work(ticket) -> Response
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cortex_server.core.auth import KeyAuthenticator, KeyStoreUnavailable, Principal, retry_seconds
from cortex_server.db.engine import database_unavailable
from cortex_server.services.gateway.estimate import estimate_tokens, tightest_tpm
from cortex_server.services.gateway.metering import new_request_id
from cortex_server.services.netaccess import client_ip, ip_allowed
from cortex_server.services.ratelimit import RateLimiter
from cortex_server.services.registry import ModelRegistry
from cortexctl.core.errors import AuthenticationError, InvalidRequest, PermissionDenied, RateLimited

MAX_TOKEN_CHARS = 256  # our keys are 53 characters; longer is junk, refused without hashing
NO_CREDENTIALS = "Send an API key as 'Authorization: Bearer <key>' (create one with `cortexctl keys create`)"
INFERENCE_SCOPE = "inference"

DENIED = {
    "requests": "Rate limit reached: too many requests per minute.",
    "tokens": "Rate limit reached: too many tokens per minute.",
    "concurrency": "Rate limit reached: too many concurrent requests.",
}


def bearer_token(request: Request) -> str | None:
    header = ""
    for name, value in request.scope["headers"]:  # ASGI names are lowercase; no Headers object built
        if name == b"authorization":
            header = value.decode("latin-1")
            break
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def request_client_ip(request: Request, trusted_proxies: Sequence[str]) -> str | None:
    """The client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy (cached)."""
    state = request.scope.setdefault("state", {})
    if "client_ip" in state:
        return state["client_ip"]  # type: ignore[no-any-return]
    peer = request.client.host if request.client else None
    if not trusted_proxies:
        ip = peer  # nothing to walk: skip the header scan
    else:
        ip = client_ip(
            peer=peer,
            # every X-Forwarded-For line, in order: a proxy may add its own line instead of appending
            forwarded_for=",".join(request.headers.getlist("x-forwarded-for")) or None,
            trusted_proxies=trusted_proxies,
        )
    state["client_ip"] = ip
    return ip


class Ticket:
    """An admitted request holding its rate-limit lease until `release` (exactly once)."""

    __slots__ = (
        "principal",
        "request_id",
        "model",
        "tokens_estimate",
        "payload",
        "raw_headers",
        "tokens_used",
        "_limiter",
        "_released",
    )

    def __init__(
        self,
        *,
        principal: Principal,
        request_id: str,
        model: str | None,
        tokens_estimate: int,
        raw_headers: tuple[tuple[bytes, bytes], ...],
        payload: dict[str, Any] | None,
        limiter: RateLimiter,
    ) -> None:
        self.principal = principal
        self.request_id = request_id
        self.model = model
        self.tokens_estimate = tokens_estimate
        self.raw_headers = raw_headers  # x-ratelimit-*: every answer to an admitted request carries them
        self.payload = payload
        self.tokens_used: int | None = None  # the real count, once the engine said it
        self._limiter = limiter
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    def record_usage(self, row: dict[str, Any]) -> None:
        """A gateway usage sink: the usage row's tokens reconcile the lease's estimate."""
        self.tokens_used = int(row.get("prompt_tokens") or 0) + int(row.get("completion_tokens") or 0)

    async def release(self) -> None:
        """Return the concurrency slot and charge the real tokens instead of the estimate."""
        if self._released:
            return
        self._released = True
        await self._limiter.finish(
            self.principal,
            request_id=self.request_id,
            tokens_estimate=self.tokens_estimate,
            tokens_used=self.tokens_used,
        )


class LeasedResponse(Response):
    """A response that is not complete yet (a stream): the lease ends after its last byte."""

    def __init__(self, inner: Response, ticket: Ticket) -> None:
        self.inner = inner
        self.ticket = ticket
        self.status_code = inner.status_code
        self.background = None
        self.raw_headers = inner.raw_headers  # shared: headers set on either reach the client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.inner(scope, receive, send)
        finally:
            await self.ticket.release()


def _complete(response: Response) -> bool:
    """True when the whole body is already in memory (nothing left to stream)."""
    return isinstance(response.__dict__.get("body"), bytes)


class Admission:
    def __init__(
        self,
        *,
        authenticator: KeyAuthenticator,
        rate_limiter: RateLimiter,
        registry: ModelRegistry,
        engine: Engine,
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        self.authenticator = authenticator
        self.rate_limiter = rate_limiter
        self.registry = registry
        self._engine = engine
        self.trusted_proxies = tuple(trusted_proxies)

    # ---- who calls -------------------------------------------------------------------

    def client_ip(self, request: Request) -> str | None:
        return request_client_ip(request, self.trusted_proxies)

    async def key_principal(self, request: Request, token: str) -> Principal:
        """The principal of an API key (cache first; unknown keys cost the address's budget)."""
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthenticationError("Invalid, revoked or expired API key.", fix="Check the key.")
        auth = self.authenticator
        hit, principal = auth.cached(token)  # hot path: no thread hop on a cache hit
        if not hit:
            ip = self.client_ip(request)
            wait = auth.unknown_budget.retry_after_s(ip)
            # this address sent too many unknown keys lately: no database lookup for it
            if wait > 0 and not auth.known_valid(token):
                seconds = retry_seconds(wait)
                raise RateLimited(
                    f"Too many invalid API keys from this address; retry after {seconds}s.",
                    fix="Check the key you send.",
                    retry_after_s=seconds,
                    code="too_many_invalid_keys",
                )
            try:
                principal = await run_in_threadpool(auth.authenticate, token)
            except (OperationalError, KeyStoreUnavailable) as exc:
                # the database could not answer: the key may be valid, so 503 (retry), never 401
                raise database_unavailable(self._engine, exc) from None
            if principal is None:
                auth.unknown_budget.spend(ip)
        if principal is None:
            raise AuthenticationError(
                "Invalid, revoked or expired API key.", fix="Check the key or create a new one."
            )
        return principal

    def check_ip(self, request: Request, principal: Principal) -> None:
        if not principal.allowed_ips and not principal.org_allowed_ips:
            return  # no allowlist: skip resolving the address
        ip = self.client_ip(request)
        if not ip_allowed(principal.allowed_ips, ip) or not ip_allowed(principal.org_allowed_ips, ip):
            raise PermissionDenied(
                f"Requests from {ip or 'an unknown address'} are not allowed for this {principal.kind}.",
                fix="Call from an allowed address, or ask an admin to extend the IP allowlist.",
                code="ip_not_allowed",
            )

    async def authenticate(
        self, request: Request, *, scopes: tuple[str, ...] = (INFERENCE_SCOPE,)
    ) -> Principal:
        """An API key holding one of `scopes`, called from an allowed address (keys only: /v1)."""
        token = bearer_token(request)
        if token is None:
            raise AuthenticationError("Missing credentials.", fix=NO_CREDENTIALS + ".")
        principal = await self.key_principal(request, token)
        self.check_ip(request, principal)
        if not any(principal.has_scope(s) for s in scopes):
            names = " or ".join(f"'{s}'" for s in scopes)
            raise PermissionDenied(
                f"This API key lacks the {names} scope.",
                fix="Use a key that has it." if len(scopes) == 1 else "Use a key that has one.",
            )
        return principal

    # ---- what it may use, and the lease --------------------------------------------------

    async def admit(self, principal: Principal, *, raw: bytes, payload: dict[str, Any], path: str) -> Ticket:
        """Model allow-list, the token estimate, then the rate-limit lease (429 when refused)."""
        model = payload.get("model")
        model = model if isinstance(model, str) else None
        if model is not None and not principal.model_allowed(model):
            raise PermissionDenied(
                f"This API key may not use the model {model!r}.",
                fix=f"Use one of: {', '.join(principal.allowed_models)}.",
                code="model_not_allowed",
                param="model",
            )
        served = self.registry.get(model) if model is not None else None
        estimate = estimate_tokens(raw, payload, path=path, served=served)
        tpm = tightest_tpm([principal.limits.tpm, principal.org_limits.tpm])
        if tpm is not None and estimate > tpm:
            raise InvalidRequest(
                f"This request needs about {estimate} tokens (prompt plus max_tokens for every completion), "
                f"more than the {tpm} tokens per minute this key may use: it can never be admitted.",
                fix="Send a smaller max_tokens or fewer prompts, "
                "or ask an admin to raise the tokens/min limit.",
                code="exceeds_token_limit",
                param="max_tokens",
            )
        return await self.lease(principal, estimate=estimate, model=model, payload=payload)

    async def lease(
        self,
        principal: Principal,
        *,
        estimate: int,
        model: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> Ticket:
        """Take the rate-limit lease for a request costing about `estimate` tokens."""
        request_id = new_request_id()
        decision = await self.rate_limiter.check(principal, tokens_estimate=estimate, request_id=request_id)
        if not decision.allowed:
            seconds = retry_seconds(decision.retry_after_s)
            raise RateLimited(
                DENIED.get(decision.denied_by or "", "Rate limit reached."),
                fix=f"Retry after {seconds}s, or ask an admin to raise the limit.",
                retry_after_s=seconds,
                details={"headers": decision.headers, "limit": decision.denied_by},
            )
        return Ticket(
            principal=principal,
            request_id=request_id,
            model=model,
            tokens_estimate=estimate,
            raw_headers=decision.raw_headers,
            payload=payload,
            limiter=self.rate_limiter,
        )

    async def serve(self, ticket: Ticket, work: Callable[[Ticket], Awaitable[Response]]) -> Response:
        """Run `work` under the lease and end the lease with the response.

        A complete answer releases here, before it is returned; a stream releases after its
        last byte (or when its client leaves). Errors release before they propagate."""
        try:
            response = await work(ticket)
        except BaseException:
            await ticket.release()
            raise
        # appended, not set: no response of ours has x-ratelimit-* yet (MutableHeaders.update
        # rescans the header list per name, measurable on the hot path)
        response.raw_headers.extend(ticket.raw_headers)
        if _complete(response):
            await ticket.release()
            return response
        return LeasedResponse(response, ticket)
