"""The one way an inference route hands its request to the gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cortex_server.api.deps import context_of
from cortex_server.api.openai.protocol import decode_json
from cortex_server.core.auth import Principal
from cortex_server.services.gateway.admission import Ticket
from cortex_server.services.gateway.disconnect import unless_disconnected
from cortex_server.services.gateway.proxy import Endpoint


async def forward_inference(
    request: Request,
    principal: Principal,
    *,
    endpoint: Endpoint,
    parse: Callable[[Any], dict[str, Any]],
) -> Response:
    """Validate the body, admit it (allow-list, rate-limit lease), proxy it (cancelled if the
    client leaves); the admission service ends the lease with the response."""
    ctx = context_of(request)
    raw = await request.body()
    payload = parse(decode_json(raw))
    admission = ctx.admission
    ticket = await admission.admit(principal, raw=raw, payload=payload, path=endpoint.path)

    def work(t: Ticket) -> Any:
        return unless_disconnected(
            request,
            ctx.gateway.forward(
                endpoint=endpoint,
                payload=payload,
                raw=raw,
                principal=principal,
                on_usage=t.record_usage,
                request_id=t.request_id,
            ),
        )

    return await admission.serve(ticket, work)
