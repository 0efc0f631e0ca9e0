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


async def unless_disconnected(request: Request, work: Awaitable[Response]) -> Response:
    """`await work`, cancelled as soon as the client disconnects (the body must be read already)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()  # a pending receive() gives up without taking a message
    if task.done():
        return task.result()
    task.cancel()  # metered as cancelled by the gateway on the way out
    await asyncio.gather(task, return_exceptions=True)
    return Response(status_code=499)  # nobody is left to read it


async def _disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
