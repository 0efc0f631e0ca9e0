"""A lean keep-alive HTTP/1.1 transport for loopback engines, behind httpx's transport interface.

Why not httpcore: profiled on the gateway's hot path, httpcore's pool (anyio streams,
h11, a readability poll of every idle connection per request) cost 0.5-0.9 ms per
request, more than the rest of the gateway together. Engines are plain HTTP/1.1 on
loopback, so this transport does only that: asyncio protocols, one write per request,
responses parsed by httptools (C, already installed with uvicorn[standard]), a LIFO
pool of idle connections per upstream. It raises httpx's exceptions, so the one
error mapping (`map_upstream_errors`) and `httpx.MockTransport` in tests still apply.
Responses must be Content-Length or chunked (llama-server and vLLM always are).

Event streams: a stream's connection goes back to the pool like any other (vLLM keeps it
open; a new connection per stream cost ~0.3 ms of time to first token), until the engine is
seen closing one after its stream (an earlier llama-server build did, though it said Keep-Alive;
the one install.sh builds keeps them): from then on that upstream's stream connections are closed
after use. An idle stream connection is asked
(poll) whether the engine closed it before it is reused, as the loop may not have read that
close yet; a close that lands later still is the proxy's one retry on a fresh connection.

Backpressure: a connection stops reading from the engine once more than `max_buffer` bytes
wait for the reader (a stream's client that reads slowly), and reads on when the reader has
taken them all; without it the gateway buffered a whole generation per slow client.
"""

from __future__ import annotations

import asyncio
import logging
import select
import socket
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import httptools
import httpx

__all__ = ["FRESH_CONNECTION", "LoopbackResponse", "LoopbackTransport"]

log = logging.getLogger(__name__)

FRESH_CONNECTION = "cortex.fresh_connection"  # request extension: do not reuse an idle connection
DEFAULT_MAX_BUFFER = 1 << 20  # the stream_buffer_max_bytes setting's default
# a stream's pooled connection closed this soon after its release: the engine closes them after
# streams (as an earlier llama-server did); later, it is the engine's idle keep-alive timeout (uvicorn's: 5 s)
CLOSED_AFTER_STREAM_S = 1.0


class _Conn(asyncio.Protocol):
    """One connection; serves one request at a time."""

    def __init__(self, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        self.transport: asyncio.Transport | None = None
        self.fd = -1  # the socket's, for `closed_by_peer`
        self.parser = httptools.HttpResponseParser(self)
        self.alive = True
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: deque[bytes] = deque()
        self.complete = False
        self.keep_alive = False
        self.event_stream = False  # the last response was text/event-stream
        self.released_at = self.closed_at = 0.0  # monotonic: back in the pool; the engine closed it
        self.error: BaseException | None = None
        self.headers_done = False
        self.max_buffer = max_buffer
        self.buffered = 0  # body bytes received and not yet taken by the reader
        self.paused = False  # reading from the engine paused: `buffered` went over `max_buffer`
        self._waiter: asyncio.Future[None] | None = None

    # ---- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.fd = sock.fileno()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed response from the engine: {exc}"))
        if self.buffered > self.max_buffer and not self.paused and self.transport is not None:
            self.paused = True  # the engine's writes block once the socket buffers fill
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self.closed_at = time.monotonic()
        if not self.complete:
            message = (
                "Server disconnected without sending a response." if not self.headers_done else "peer closed"
            )
            self._fail(
                httpx.RemoteProtocolError(message) if not self.headers_done else httpx.ReadError(message)
            )

    # ---- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        if value.startswith(b"text/event-stream") and name.lower() == b"content-type":
            self.event_stream = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        self._wake()

    def on_message_complete(self) -> None:
        # should_keep_alive() is only valid inside this callback
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True
        self._wake()

    # ---- used by the transport
    def start(self, data: bytes) -> None:
        self.status, self.headers, self.complete, self.headers_done, self.error = 0, [], False, False, None
        self.keep_alive = self.event_stream = False
        self.chunks.clear()
        self.buffered = 0
        assert self.transport is not None
        if self.paused:  # the last response filled the buffer with its final bytes
            self.resume()
        self.transport.write(data)

    def closed_by_peer(self) -> bool:
        """Did the engine close this idle connection (or send on it)? Asked of the socket, which
        knows before the event loop has read the close."""
        if not self.alive or self.fd < 0:
            return True
        try:
            poller = select.poll()
            poller.register(self.fd, select.POLLIN)  # readable while idle: the close, or stray bytes
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def resume(self) -> None:
        self.paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    async def wait(self, timeout: float | None) -> None:
        """Until something new arrived (headers, a chunk, the end, or an error)."""
        if self.error is not None:
            raise self.error
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        handle = loop.call_later(timeout, _expire, self._waiter) if timeout is not None else None
        try:
            await self._waiter
        finally:
            self._waiter = None
            if handle is not None:
                handle.cancel()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.alive = False
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        self.alive = False
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("the engine sent nothing within the read timeout"))


class _Body(httpx.AsyncByteStream):
    def __init__(self, pool: LoopbackTransport, conn: _Conn, read_timeout: float | None) -> None:
        self._pool, self._conn, self._timeout = pool, conn, read_timeout
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            while conn.chunks:
                chunk = conn.chunks.popleft()
                conn.buffered -= len(chunk)
                yield chunk
            if conn.complete:
                return
            if conn.paused:  # all taken: read on
                conn.resume()
            await conn.wait(self._timeout)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        conn = self._conn
        if conn.complete and conn.keep_alive and conn.alive and conn.error is None:
            self._pool._release(conn)
        else:  # cut short (client left, error): the connection's state is unknown, drop it
            conn.close()


class _RawHeaders:
    """The few header lookups the gateway makes, without building httpx.Headers."""

    __slots__ = ("raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower().encode()
        for k, v in self.raw:
            if k.lower() == key:
                return v.decode("latin-1")
        return default


class LoopbackResponse:
    """What `LoopbackTransport.post` answers: httpx.Response's status_code, headers.get, aread,
    aiter_raw and aclose, without its object graph (about a fifth of the gateway's own CPU per
    request went into building httpx Request/Response/Headers objects that were read once)."""

    __slots__ = ("status_code", "headers", "_body")

    def __init__(self, status_code: int, headers: list[tuple[bytes, bytes]], body: _Body) -> None:
        self.status_code = status_code
        self.headers = _RawHeaders(headers)
        self._body = body

    async def aread(self) -> bytes:
        parts = [chunk async for chunk in self._body]
        await self._body.aclose()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def aiter_raw(self) -> AsyncIterator[bytes]:
        return self._body.__aiter__()

    async def aclose(self) -> None:
        await self._body.aclose()


class LoopbackTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 to one upstream (host:port), for POSTs with a known body."""

    def __init__(self, *, max_idle: int = 512, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        self._idle: list[_Conn] = []
        self._max_idle = max_idle
        self._max_buffer = max_buffer  # per connection: see the module's docstring
        self._closed = False
        self.pools_streams = True  # until the engine closes a stream's connection (the docstring)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        read_timeout = timeouts.get("read")
        body = request.content  # bytes given to httpx.Request: already in memory
        url = request.url
        head = [
            f"{request.method} {url.raw_path.decode()} HTTP/1.1\r\nHost: {url.netloc.decode()}\r\n".encode()
        ]
        for name, value in request.headers.raw:
            if name.lower() != b"host":
                head.append(name + b": " + value + b"\r\n")
        data = b"".join(head) + b"\r\n" + body

        fresh = request.extensions.get(FRESH_CONNECTION, False)
        conn = await self._acquire(url, timeouts.get("connect"), fresh=fresh)
        try:
            conn.start(data)
            while not conn.headers_done:
                await conn.wait(read_timeout)
        except BaseException:
            conn.close()
            raise
        return httpx.Response(conn.status, headers=conn.headers, stream=_Body(self, conn, read_timeout))

    async def post(
        self,
        url: httpx.URL,
        *,
        head: bytes,
        body: bytes,
        timeouts: dict[str, float | None],
        fresh: bool = False,
    ) -> LoopbackResponse:
        """POST `body` after `head` (request line and headers, without the blank line or
        Content-Length); the hot path's way in, with no httpx.Request to build."""
        read_timeout = timeouts.get("read")
        data = b"%scontent-length: %d\r\n\r\n%s" % (head, len(body), body)
        conn = await self._acquire(url, timeouts.get("connect"), fresh=fresh)
        try:
            conn.start(data)
            while not conn.headers_done:
                await conn.wait(read_timeout)
        except BaseException:
            conn.close()
            raise
        return LoopbackResponse(conn.status, conn.headers, _Body(self, conn, read_timeout))

    async def _acquire(self, url: httpx.URL, connect_timeout: float | None, *, fresh: bool) -> _Conn:
        while self._idle and not fresh:
            conn = self._idle.pop()
            if not conn.event_stream:
                if conn.alive:
                    return conn
            elif not conn.closed_by_peer():
                return conn
            else:
                closed_at = conn.closed_at if not conn.alive else time.monotonic()  # poll: just now
                if closed_at - conn.released_at < CLOSED_AFTER_STREAM_S:
                    self._streams_closed_by(url)
                conn.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Conn(self._max_buffer), url.host, url.port or 80
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {url.host}:{url.port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        return conn

    def _streams_closed_by(self, url: httpx.URL) -> None:
        if self.pools_streams:
            self.pools_streams = False
            engine = url.netloc.decode()
            log.info("the engine at %s closes connections after streams: not pooling those", engine)

    def _release(self, conn: _Conn) -> None:
        unpooled_stream = conn.event_stream and not self.pools_streams
        if self._closed or len(self._idle) >= self._max_idle or unpooled_stream:
            conn.close()
        else:
            conn.released_at = time.monotonic()
            self._idle.append(conn)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
