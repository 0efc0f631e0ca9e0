"""SlotEngineTestDouble: an OpenAI-style chat engine with a fixed number of generation slots (tests only).

NOT an engine and NOT a model: the text it "generates" is filler. It stands in for llama-server and
vLLM where CORTEX's stream handling depends on how they behave:
- at most `--slots` generations run at once; further requests wait for a slot before any byte is
  sent (llama-server's `-np`, vLLM's max_num_seqs);
- a generation holds its slot until its last token was written, or until the connection closed:
  then it stops (both engines abort a request whose client went away), so a client that is never
  dropped holds the slot for the whole generation;
- one token per SSE chunk (both engines' default), a usage chunk when
  `stream_options.include_usage` is set, then `data: [DONE]`;
- writes honour TCP backpressure (a small SO_SNDBUF, asyncio's drain), so a reader that stops
  reading blocks the stream's writes, as a real engine's socket would.

Run as its own process: `python slot_engine_test_double.py PORT [--slots N]`. Per request, the
body may set `max_tokens`, `double_token_delay_s` (pace of generation), `double_token_bytes`
(size of each token's text) and `double_first_token_delay_s` (time before the first byte).
`GET /stats` answers what it saw: per generation, tokens and bytes written, whether a write had to
wait for the reader (`blocked`) and how it ended (`done` / `disconnected`); the most generations
that ran at once; how many wait for a slot now.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from typing import Any

PROMPT_TOKENS = 7
SNDBUF = 16 * 1024  # small, so a stopped reader blocks the writes soon


class SlotEngine:
    def __init__(self, slots: int) -> None:
        self.slots = asyncio.Semaphore(slots)
        self.active = 0
        self.max_active = 0
        self.waiting = 0
        self.generations: list[dict[str, Any]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
        writer.transport.set_write_buffer_limits(high=SNDBUF)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                if method == "GET" and path == "/health":
                    await self._json(writer, {"status": "ok"})
                elif method == "GET" and path == "/stats":
                    await self._json(writer, self.stats())
                elif method == "POST" and path == "/v1/chat/completions":
                    await self.generate(reader, writer, json.loads(body))
                    return  # the connection closes after a generation
                else:
                    await self._json(writer, {"error": {"message": "not found"}}, status=404)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def stats(self) -> dict[str, Any]:
        return {
            "max_active": self.max_active,
            "active": self.active,
            "waiting": self.waiting,
            "generations": self.generations,
        }

    async def _json(self, writer: asyncio.StreamWriter, payload: Any, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        writer.write(
            b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, len(data), data)
        )
        await writer.drain()

    async def generate(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: dict[str, Any]
    ) -> None:
        n = int(body.get("max_tokens") or 16)
        delay = float(body.get("double_token_delay_s") or 0)
        size = int(body.get("double_token_bytes") or 4)
        stream = body.get("stream") is True
        gen: dict[str, Any] = {
            "model": body.get("model"),
            "stream": stream,
            "tokens": 0,
            "bytes": 0,
            "blocked": False,
            "bytes_when_blocked": None,
            "end": "waiting",
        }
        self.generations.append(gen)
        gone = asyncio.ensure_future(reader.read(1))  # b"" (EOF) when the gateway closes the connection
        self.waiting += 1
        try:
            async with self.slots:
                self.waiting -= 1
                self.active += 1
                self.max_active = max(self.max_active, self.active)
                gen["end"] = "running"
                try:
                    await self._generate(writer, body, gen, gone, n=n, delay=delay, size=size, stream=stream)
                    gen["end"] = "done"
                except ConnectionError:
                    gen["end"] = "disconnected"
                finally:
                    self.active -= 1
        finally:
            if gen["end"] == "waiting":
                self.waiting -= 1
                gen["end"] = "disconnected"
            gone.cancel()

    async def _generate(
        self,
        writer: asyncio.StreamWriter,
        body: dict[str, Any],
        gen: dict[str, Any],
        gone: asyncio.Future[bytes],
        *,
        n: int,
        delay: float,
        size: int,
        stream: bool,
    ) -> None:
        first_delay = float(body.get("double_first_token_delay_s") or 0)
        if first_delay:
            await asyncio.wait((gone,), timeout=first_delay)
        if gone.done():
            raise ConnectionResetError("the client left before the first token")
        base = {"id": "chatcmpl-double", "object": "chat.completion.chunk", "created": int(time.time())}
        base["model"] = body.get("model")
        text = "x" * size
        if not stream:
            for _ in range(n):
                if delay:
                    await asyncio.sleep(delay)
                if gone.done():
                    raise ConnectionResetError("the client left")
                gen["tokens"] += 1
            answer = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text * n},
                        "finish_reason": "length",
                    }
                ],
                "usage": {
                    "prompt_tokens": PROMPT_TOKENS,
                    "completion_tokens": n,
                    "total_tokens": PROMPT_TOKENS + n,
                },
            }
            await self._json(writer, answer)
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            b"connection: close\r\n\r\n"
        )
        for i in range(n):
            if delay:
                await asyncio.sleep(delay)
            if gone.done():
                raise ConnectionResetError("the client left")
            delta = {"role": "assistant", "content": text} if i == 0 else {"content": text}
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            await self._event(writer, gen, chunk)
            gen["tokens"] += 1
        await self._event(
            writer, gen, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
        )
        if (body.get("stream_options") or {}).get("include_usage") is True:
            usage = {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": n,
                "total_tokens": PROMPT_TOKENS + n,
            }
            await self._event(writer, gen, {**base, "choices": [], "usage": usage})
        await self._write(writer, gen, b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _event(
        self, writer: asyncio.StreamWriter, gen: dict[str, Any], payload: dict[str, Any]
    ) -> None:
        await self._write(writer, gen, b"data: " + json.dumps(payload).encode() + b"\n\n")

    async def _write(self, writer: asyncio.StreamWriter, gen: dict[str, Any], data: bytes) -> None:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        if writer.transport.get_write_buffer_size() > 0 and not gen["blocked"]:
            # the kernel did not take it all: the reader's side is full
            gen["blocked"], gen["bytes_when_blocked"] = True, gen["bytes"]
        await writer.drain()
        gen["bytes"] += len(data)


async def serve(port: int, slots: int) -> None:
    engine = SlotEngine(slots)
    server = await asyncio.start_server(engine.handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--slots", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.slots))


if __name__ == "__main__":
    main()
