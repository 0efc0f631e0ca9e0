"""The loopback HTTP/1.1 transport against a raw asyncio server (real sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

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


async def test_event_stream_connections_are_not_pooled() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        # like llama-server: keep-alive advertised, connection closed after the stream
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
            b"Keep-Alive: timeout=5, max=100\r\n\r\n6\r\ndata: \r\n0\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server, url = await serve(handler)
    t = LoopbackTransport()
    for _ in range(2):
        resp = await t.handle_async_request(post(url))
        assert await resp.aread() == b"data: "
        await resp.aclose()  # no sleep: the next request must not pick the doomed connection
    assert connections == 2
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
