"""Admission of a playground turn: a browser session with the `chat` scope, rate-limited
under the user's org exactly like an API key's inference call.

It takes its lease from the same admission service as `/v1` (which admits keys only), so the
gateway meters and reconciles the turn the same way, under one request id. CSRF is checked by `authenticate`
for every write made with a session.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cortex_server.api.deps import _declare, authenticate, context_of
from cortex_server.core.auth import Principal
from cortex_server.services.gateway.admission import Ticket
from cortexctl.core.errors import PermissionDenied

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


async def admit_turn(request: Request, principal: Principal, *, estimate: int) -> Ticket:
    """Take the rate-limit lease for one turn; end it through `admission.serve` (or `release`)."""
    return await context_of(request).admission.lease(principal, estimate=estimate)


__all__ = ["ChatUser", "admit_turn", "require_chat_user"]
