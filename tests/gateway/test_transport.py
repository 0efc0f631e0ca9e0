"""The loopback HTTP/1.1 transport against a raw asyncio server (real sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from cortex_server.services.gateway import transport as transport_module
from cortex_server.services.gateway.transport import LoopbackTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    return head + await reader.readexactly(length)


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def post(url: str, body: bytes = b'{"a":1}', read: float | None = 5.0) -> httpx.Request:
    timeout = {"connect": 2.0, "read": read, "write": 2.0, "pool": 2.0}
    return httpx.Request("POST", url + "/v1/x", content=body, extensions={"timeout": timeout})


async def test_content_length_responses_reuse_one_connection() -> None:
    connections = 0
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                seen.append(await read_request(reader))
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    server, url = await serve(handler)
    t = LoopbackTransport()
    for _ in range(3):
        resp = await t.handle_async_request(post(url))
        assert resp.status_code == 200 and await resp.aread() == b"{}"
        assert resp.headers["content-type"] == "application/json"
        await resp.aclose()
    assert connections == 1
    assert seen[0].startswith(b"POST /v1/x HTTP/1.1\r\nHost: 127.0.0.1:") and seen[0].endswith(b'{"a":1}')
    await t.aclose()
    await asyncio.sleep(0.05)  # the handler sees the close and returns
    server.close()


async def test_chunked_stream_arrives_chunk_by_chunk() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"6\r\n world\r\n0\r\n\r\n")
        await writer.drain()

    server, url = await serve(handler)
    t = LoopbackTransport()
    resp = await t.handle_async_request(post(url))
    chunks: AsyncIterator[bytes] = resp.aiter_raw()
    assert await chunks.__anext__() == b"hello"  # before the rest exists
    release.set()
    assert [c async for c in chunks] == [b" world"]
    await resp.aclose()
    await t.aclose()
    server.close()


async def test_errors_are_httpx_exceptions() -> None:
    t = LoopbackTransport()
    server, url = await serve(lambda r, w: asyncio.sleep(0))
    server.close()
    await server.wait_closed()
    with pytest.raises(httpx.ConnectError):
        await t.handle_async_request(post(url))

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    server, url = await serve(silent)
    with pytest.raises(httpx.ReadTimeout):
        await t.handle_async_request(post(url, read=0.1))
    server.close()

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    server, url = await serve(hang_up)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await t.handle_async_request(post(url))
    server.close()
    await t.aclose()


async def test_an_idle_connection_closed_by_the_server_is_not_reused() -> None:
    connections = 0

    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # keep-alive refused after one request

    server, url = await serve(once)
    t = LoopbackTransport()
    for _ in range(2):
        resp = await t.handle_async_request(post(url))
        assert await resp.aread() == b"ok"
        await resp.aclose()
        await asyncio.sleep(0.05)  # the close reaches us
    assert connections == 2
    await t.aclose()
    server.close()


SSE_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
    b"Keep-Alive: timeout=5, max=100\r\n\r\n6\r\ndata: \r\n0\r\n\r\n"
)


def sse_engine(*, closes_after_stream: bool, idle_close_s: float | None = None) -> tuple[Handler, list[int]]:
    """An engine that answers every request with a small stream. `closes_after_stream`: like an
    earlier llama-server build (Keep-Alive advertised, the connection closed after each stream);
    else like vLLM, which keeps it, closing it only after `idle_close_s` without a request."""
    connections = [0]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        while True:
            try:
                await asyncio.wait_for(read_request(reader), idle_close_s)
            except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                writer.close()
                return
            writer.write(SSE_RESPONSE)
            await writer.drain()
            if closes_after_stream:
                writer.close()
                return

    return handler, connections


async def streams(t: LoopbackTransport, url: str, n: int, pause_s: float = 0.0) -> None:
    for _ in range(n):
        resp = await t.handle_async_request(post(url))
        assert await resp.aread() == b"data: "
        await resp.aclose()  # no pause by default: the next request comes at once
        await asyncio.sleep(pause_s)


async def test_event_stream_connections_are_pooled_while_the_engine_keeps_them() -> None:
    handler, connections = sse_engine(closes_after_stream=False)
    server, url = await serve(handler)
    t = LoopbackTransport()
    await streams(t, url, 3)
    assert connections == [1] and t.pools_streams  # one connection: no connect per stream
    await t.aclose()
    server.close()


async def test_an_engine_that_closes_streams_connections_is_learned_and_never_fails_a_request() -> None:
    handler, connections = sse_engine(closes_after_stream=True)
    server, url = await serve(handler)
    t = LoopbackTransport()
    await streams(t, url, 3)  # the doomed connection is never picked: every stream succeeds
    assert connections == [3] and not t.pools_streams  # learned from the first: not pooled any more
    await t.aclose()
    server.close()


async def test_an_engines_idle_timeout_keeps_streams_pooled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An engine that closes a connection idle for a while (uvicorn: 5 s) keeps stream connections
    otherwise: they stay pooled."""
    monkeypatch.setattr(transport_module, "CLOSED_AFTER_STREAM_S", 0.1)
    handler, connections = sse_engine(closes_after_stream=False, idle_close_s=0.2)
    server, url = await serve(handler)
    t = LoopbackTransport()
    await streams(t, url, 2, pause_s=0.4)  # each pause outlasts the engine's idle timeout
    assert connections == [2] and t.pools_streams
    await t.aclose()
    server.close()


async def test_a_reader_that_stops_taking_pauses_the_engine_and_the_connection_is_reusable() -> None:
    """Over max_buffer waiting for the reader: the transport stops reading (the engine's writes then
    block) and holds no more; once the reader took it all, reading goes on. A keep-alive connection
    whose last response ended while paused reads again for the next request."""
    body = bytes(range(256)) * (16 << 12)  # 16 MiB: more than the loopback socket buffers hold
    max_buffer = 64 * 1024

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            for i in range(0, len(body), 65536):
                writer.write(body[i : i + 65536])
                await writer.drain()

    server, url = await serve(handler)
    t = LoopbackTransport(max_buffer=max_buffer)
    resp = await t.handle_async_request(post(url))
    conn = resp.stream._conn  # type: ignore[attr-defined]
    stream = resp.aiter_raw()
    got = [await anext(stream)]
    for _ in range(1000):  # we take nothing more: the transport must stop reading
        if conn.paused:
            break
        await asyncio.sleep(0.01)
    assert conn.paused
    await asyncio.sleep(0.2)
    assert conn.buffered <= max_buffer + (256 << 10)  # the cap and the one read that crossed it
    got += [chunk async for chunk in stream]
    await resp.aclose()
    assert b"".join(got) == body
    for _ in range(2):  # the same connection again, read whole
        resp = await t.handle_async_request(post(url))
        assert await asyncio.wait_for(resp.aread(), 10) == body
        await resp.aclose()
    await t.aclose()
    await asyncio.sleep(0.05)
    server.close()
