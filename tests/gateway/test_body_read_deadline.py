"""The body limit's read deadline (body_limit._receive_by): what `asyncio.timeout_at` promised,
checked for each way a read can end, since it replaced it on the hot path."""

from __future__ import annotations

import asyncio

import pytest

from cortex_server.api.middleware.body_limit import _receive_by


async def test_a_message_in_time_is_returned_and_the_timer_is_gone() -> None:
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[dict[str, object]] = loop.create_future()
    loop.call_later(0.01, arrived.set_result, {"type": "http.request", "body": b"x"})

    async def receive() -> dict[str, object]:
        return await arrived

    message = await _receive_by(loop, loop.time() + 5, receive)
    assert message["body"] == b"x"
    await asyncio.sleep(0.05)  # a stray timer would cancel this task now
    assert asyncio.current_task(loop).cancelling() == 0  # type: ignore[union-attr]


async def test_no_message_by_the_deadline_is_a_timeout() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await _receive_by(loop, started + 0.05, loop.create_future)
    assert 0.04 < loop.time() - started < 1
    assert asyncio.current_task(loop).cancelling() == 0  # type: ignore[union-attr]


async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    loop = asyncio.get_running_loop()
    reading = asyncio.create_task(_receive_by(loop, loop.time() + 5, loop.create_future))
    await asyncio.sleep(0.01)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading


async def test_a_cancel_from_outside_racing_the_deadline_is_not_swallowed() -> None:
    """Both the deadline and a shutdown cancel land before the read resumes: the task must still
    end cancelled (TimeoutError would swallow the shutdown's cancel)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.05

    async def read() -> object:
        return await _receive_by(loop, deadline, loop.create_future)

    reading = asyncio.create_task(read())
    await asyncio.sleep(0)
    loop.call_at(deadline, reading.cancel)  # after the timer's own callback, same loop turn
    with pytest.raises(asyncio.CancelledError):
        await reading
