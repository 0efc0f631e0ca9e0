"""Admission of a playground turn: a browser session with the `chat` scope, rate-limited
under the user's org exactly like an API key's inference call.

It mirrors `deps.require_inference` (which admits keys only): same limiter, same grant, so
the gateway meters and reconciles the turn the same way. CSRF is checked by `authenticate`
for every write made with a session.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request, Response

from cortex_server.api.deps import _DENIED, InferenceGrant, _declare, authenticate, context_of
from cortex_server.core.auth import Principal
from cortexctl.core.errors import PermissionDenied, RateLimited

CHAT_SCOPE = "chat"


async def _chat_user(request: Request) -> Principal:
    principal = await authenticate(request, keys=False)
    if not principal.has_scope(CHAT_SCOPE) or principal.user_id is None:
        raise PermissionDenied(
            "Your role may not use the chat playground.", fix="Ask an admin for the member role or above."
        )
    return principal


require_chat_user = _declare(_chat_user, scope=CHAT_SCOPE, keys=False)
ChatUser = Annotated[Principal, Depends(require_chat_user)]


async def admit_turn(
    request: Request, response: Response, principal: Principal, *, estimate: int
) -> InferenceGrant:
    """Check the rate limits for one turn; the caller must `await grant.finish(...)`."""
    ctx = context_of(request)
    request_id = uuid.uuid4().hex
    decision = await ctx.rate_limiter.check(principal, tokens_estimate=estimate, request_id=request_id)
    if not decision.allowed:
        raise RateLimited(
            _DENIED.get(decision.denied_by or "", "Rate limit reached."),
            fix=f"Retry after {decision.retry_after_s:.1f}s, or ask an admin to raise the limit.",
            retry_after_s=decision.retry_after_s,
            details={"headers": decision.headers},
        )
    response.headers.update(decision.headers)
    return InferenceGrant(
        principal=principal,
        request_id=request_id,
        model=None,
        tokens_estimate=estimate,
        headers=decision.headers,
        limiter=ctx.rate_limiter,
    )


__all__ = ["ChatUser", "admit_turn", "require_chat_user"]
