"""Request bodies: refuse oversized ones (413, chunked too) and slow ones (408), before parsing.

A declared Content-Length over the limit is answered at once. A chunked body is counted as
it arrives; once over, reading it raises (so no route acts on a truncated body) and the
response, whatever the app made of the exception, is replaced by the 413. The same for a
body not fully received within `read_timeout_s` of the app's first read (slowloris: a 1 MiB
Content-Length with 10 bytes sent held a connection forever): 408. Both close the
connection (`Connection: close`), since the rest of the body is never read.

`BodyLimits` holds the limits and answers; the inference fast path (api/openai/fastpath.py)
applies the same object to the /v1 POSTs it serves before this middleware would run.
"""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cortex_server.core.errors import body_for, error_body
from cortexctl.core.errors import CortexError, PayloadTooLarge


class BodyRefused(CortexError):
    """Raised from `receive` so nothing downstream acts on a partial body. A CortexError, so
    a route that reads the body itself renders it without an 'unhandled error' log; whatever
    the app answers, `guarded_send` replaces it with `response`."""

    status_code = 400

    def __init__(self, response: JSONResponse) -> None:
        super().__init__("The request body was refused.", code="body_refused")
        self.response = response


class BodyLimits:
    """The limits and their answers, shared by the middleware and the inference fast path."""

    def __init__(self, *, max_bytes: int, read_timeout_s: float = 60.0) -> None:
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def read_body(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body of a request not answered yet, within the limits: for a route that reads
        its body whole before it answers (the inference fast path), the middleware's checks without
        wrapping `receive` and `send`. The caller has refused a declared oversized body already
        (`declared_too_large`, before the key is checked). Raises BodyRefused (its `response` is the
        413 or 408 to send) or ClientDisconnect, as Request.body() would."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout_s
        chunks: list[bytes] = []
        seen = 0
        while True:
            try:
                message = await _receive_by(loop, deadline, receive)
            except TimeoutError:
                raise BodyRefused(self.timed_out()) from None
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            if message["type"] != "http.request":
                continue
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.max_bytes:
                raise BodyRefused(self.too_large())
            chunks.append(body)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def declared_too_large(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    return int(value) > self.max_bytes
                except ValueError:
                    return False
        return False

    def too_large(self) -> JSONResponse:
        exc = PayloadTooLarge(
            f"The request body is larger than the limit of {self.max_bytes} bytes.",
            fix="Send a smaller request, or raise max_request_body_bytes in cortex.yaml.",
        )
        return JSONResponse(body_for(exc), status_code=413, headers={"Connection": "close"})

    def timed_out(self) -> JSONResponse:
        body = error_body(
            f"The request body was not received within {self.read_timeout_s:g}s.",
            type_="invalid_request_error",
            code="body_timeout",
            fix="Send the whole body promptly, or raise body_read_timeout_s in cortex.yaml.",
        )
        return JSONResponse(body, status_code=408, headers={"Connection": "close"})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits
        if limits.declared_too_large(scope):
            await limits.too_large()(scope, receive, send)
            return
        refused: list[JSONResponse] = []
        seen = 0
        deadline: float | None = None  # from the app's first read: time spent before it is not the client's
        body_done = False

        async def guarded_receive() -> Message:
            nonlocal seen, body_done, deadline
            if refused:
                raise BodyRefused(refused[0])
            if body_done:  # after the body, receive() only waits for a disconnect: no deadline
                return await receive()
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + limits.read_timeout_s
            try:
                message = await _receive_by(loop, deadline, receive)
            except TimeoutError:
                refused.append(limits.timed_out())
                raise BodyRefused(refused[0]) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limits.max_bytes:
                    refused.append(limits.too_large())
                    raise BodyRefused(refused[0])
                body_done = not message.get("more_body", False)
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await refused[0](scope, _nothing, send)
                return  # the app's own answer to the refused body is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except BodyRefused as exc:
            if not started:
                await exc.response(scope, _nothing, send)


async def _receive_by(loop: asyncio.AbstractEventLoop, deadline: float, receive: Receive) -> Message:
    """`await receive()`, raising TimeoutError at `deadline`: what `asyncio.timeout_at` does (a timer
    that cancels this task, turned into TimeoutError only if it was ours), minus the Timeout object
    and its loop and task look-ups, on every request's body read."""
    task = asyncio.current_task(loop)
    assert task is not None
    cancelling = task.cancelling()
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = loop.call_at(deadline, expire)
    try:
        return await receive()
    except asyncio.CancelledError:
        if expired and task.uncancel() <= cancelling:
            raise TimeoutError from None
        raise
    finally:
        timer.cancel()


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
