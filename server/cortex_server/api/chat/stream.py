"""Relay a playground turn's stream to the browser while keeping the assistant's text.

The gateway's response (a RelayResponse for a stream) is called as-is, so its disconnect
watcher still cancels the engine request when the user presses stop; only `send` is wrapped,
to read the `delta.content` of each SSE event on its way out. When the response ends, for
whatever reason, `on_done(text)` stores what the user saw (the admission service, which wraps
this response, then ends the rate-limit lease).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send


class DeltaCollector:
    """The assistant text carried by OpenAI chat-completion SSE events, fed in arbitrary chunks."""

    def __init__(self) -> None:
        self._tail = b""
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def feed(self, chunk: bytes) -> None:
        data = self._tail + chunk
        *events, self._tail = data.replace(b"\r\n", b"\n").split(b"\n\n")
        for event in events:
            self._event(event)

    def close(self) -> None:
        if self._tail.strip():
            self._event(self._tail)
        self._tail = b""

    def _event(self, event: bytes) -> None:
        data = b"\n".join(line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:"))
        if not data or data == b"[DONE]":
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        for choice in payload.get("choices") or [] if isinstance(payload, dict) else []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                self.parts.append(content)


class CapturedStream(Response):
    def __init__(
        self,
        inner: Response,
        *,
        on_done: Callable[[str], asyncio.Future[None]],
    ) -> None:
        self.inner = inner
        self.status_code = inner.status_code
        self.background = None
        self.raw_headers = inner.raw_headers
        self._on_done = on_done
        self.collector = DeltaCollector()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = self.inner.media_type == "text/event-stream"
        saved = False

        async def save() -> None:
            nonlocal saved
            if not saved:
                saved = True
                self.collector.close()
                await asyncio.shield(self._on_done(self.collector.text))

        async def capture(message: Message) -> None:
            if streaming and message["type"] == "http.response.body":
                self.collector.feed(message.get("body", b""))
                if not message.get("more_body", False):
                    await save()  # stored before the client sees the end: a reload right after finds it
            await send(message)

        try:
            await self.inner(scope, receive, capture)
        finally:
            await save()  # a stream cut short (stop button, disconnect) keeps what was streamed
