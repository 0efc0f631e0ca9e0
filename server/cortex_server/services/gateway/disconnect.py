"""Cancel the upstream call when the client goes away before the answer is ready.

Streams watch for the disconnect themselves once they relay (streaming.py); this covers the
time before that: a whole non-streamed generation, or the wait for a stream's first byte.
Cancelling closes the engine connection, and the engines stop generating for a closed one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import Response

from cortex_server.services.gateway.client_gone import CLIENT_CLOSED_REQUEST, wait_for_disconnect

WATCH_AFTER_S = 0.05  # quick answers never pay for a watcher; long generations are what matter


async def unless_disconnected(request: Request, work: Awaitable[Response]) -> Response:
    """`await work`, cancelled soon after the client disconnects (the body must be read already).

    `work` runs in this task. If it is still running after WATCH_AFTER_S, a watcher task starts
    listening for the disconnect and cancels this task when it comes."""
    current = asyncio.current_task()
    assert current is not None
    watcher: asyncio.Future[None] | None = None

    def client_left(done: asyncio.Future[None]) -> None:
        if not done.cancelled() and done.exception() is None:
            current.cancel()

    def start_watching() -> None:
        nonlocal watcher
        watcher = asyncio.ensure_future(wait_for_disconnect(request.receive))
        watcher.add_done_callback(client_left)

    timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, start_watching)
    try:
        return await work
    except asyncio.CancelledError:
        if watcher is None or not watcher.done() or watcher.cancelled():
            raise  # cancelled from outside (shutdown): not ours to swallow
        current.uncancel()  # our own cancel: the request is over, nobody is left to read
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.remove_done_callback(client_left)
            watcher.cancel()  # a pending receive() gives up without taking a message
