"""The one way an inference route hands its request to the gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cortex_server.api.deps import InferenceGrant
from cortex_server.api.openai.protocol import decode_json
from cortex_server.context import AppContext
from cortex_server.services.gateway.disconnect import unless_disconnected
from cortex_server.services.gateway.proxy import Endpoint


async def forward_inference(
    request: Request,
    grant: InferenceGrant,
    ctx: AppContext,
    *,
    endpoint: Endpoint,
    parse: Callable[[Any], dict[str, Any]],
) -> Response:
    """Validate the body, proxy it (cancelled if the client leaves), add the x-ratelimit-* headers."""
    raw = await request.body()
    # the dependency already decoded a JSON object; anything else gets decode_json's 400
    payload = parse(grant.body if grant.body is not None else decode_json(raw))
    response = await unless_disconnected(
        request,
        ctx.gateway.forward(
            endpoint=endpoint,
            payload=payload,
            raw=raw,
            principal=grant.principal,
            on_usage=grant.record_usage,
        ),
    )
    response.headers.update(grant.headers)
    return response
