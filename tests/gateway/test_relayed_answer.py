"""An engine's complete answer as the gateway relays it (proxy.RelayedAnswer): the headers
Starlette's Response would have built, built directly, checked against Starlette's own."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import Response

from cortex_server.services.gateway.proxy import RelayedAnswer


async def sent(response: Response) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await response({"type": "http", "method": "POST"}, receive, send)
    return messages


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (200, "application/json", b'{"id": "x"}'),
        (400, "application/json; charset=utf-8", b'{"error": {}}'),
        (500, "text/plain", b"Internal Server Error"),
        (503, "text/html; charset=iso-8859-1", b"<p>busy</p>"),
        (200, "text/event-stream", b""),
        (204, "application/json", b""),
        (304, "text/plain", b""),
    ],
)
async def test_headers_and_body_match_starlettes_response(
    status: int, content_type: str, body: bytes
) -> None:
    ours = await sent(RelayedAnswer(body, status, content_type, "req-1"))
    theirs = await sent(
        Response(body, status_code=status, media_type=content_type, headers={"x-request-id": "req-1"})
    )
    assert ours[0]["status"] == theirs[0]["status"] == status
    assert sorted(ours[0]["headers"]) == sorted(theirs[0]["headers"])
    assert ours[1:] == theirs[1:]
