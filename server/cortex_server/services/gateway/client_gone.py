"""What the gateway does when the client goes away first: one status, one waiter.

The status is nginx's 499 "client closed request": the usage row, the metrics and the answer
nobody reads all use it, so the rollups can count cancelled requests apart from client errors.
"""

from __future__ import annotations

from starlette.types import Receive

CLIENT_CLOSED_REQUEST = 499


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the client's `http.disconnect` arrives (other messages are dropped: the body
    was read before this runs)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
