"""A small OpenAI-compatible upstream on loopback, for remote-engine recipes to point at.

It is the "endpoint that already runs somewhere" of `engine: remote`: it lists one model,
answers chat completions (JSON or SSE with a usage chunk), checks a Bearer key when given
one, records what it was sent, and can be made unhealthy. Runs under uvicorn in a thread,
or as its own process (`python -m tests.support.openai_upstream PORT MODEL [KEY]`) for tests
that need it to outlive nothing in the test process.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import free_port

PROMPT_TOKENS = 5


@dataclass
class OpenAIUpstream:
    model: str = "upstream-model"
    key: str | None = None
    healthy: bool = True
    port: int = field(default_factory=free_port)
    auth_seen: list[str | None] = field(default_factory=list)
    models_seen: list[str] = field(default_factory=list)
    completions: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _refused(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization")
        self.auth_seen.append(auth)
        if self.key is not None and auth != f"Bearer {self.key}":
            return JSONResponse({"error": {"message": "bad key", "type": "auth"}}, status_code=401)
        return None

    async def list_models(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        if not self.healthy:
            return JSONResponse({"error": {"message": "down for maintenance"}}, status_code=500)
        entry = {"id": self.model, "object": "model", "owned_by": "upstream", "max_model_len": 2048}
        return JSONResponse({"object": "list", "data": [entry]})

    async def chat(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        body = json.loads(await request.body())
        self.models_seen.append(body.get("model"))
        n = int(body.get("max_tokens") or 4)
        self.completions += 1
        created, rid = int(time.time()), f"chatcmpl-{self.completions}"
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": n, "total_tokens": PROMPT_TOKENS + n}
        if not body.get("stream"):
            message = {"role": "assistant", "content": " ".join(["tok"] * n)}
            return JSONResponse(
                {
                    "id": rid,
                    "object": "chat.completion",
                    "created": created,
                    "model": body.get("model"),
                    "choices": [{"index": 0, "message": message, "finish_reason": "length"}],
                    "usage": usage,
                }
            )
        with_usage = (body.get("stream_options") or {}).get("include_usage") is True

        async def events() -> AsyncIterator[bytes]:
            base = {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.get("model"),
            }
            for i in range(n):
                delta = {"content": "tok "} if i else {"role": "assistant", "content": "tok "}
                chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
            last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
            yield b"data: " + json.dumps(last).encode() + b"\n\n"
            if with_usage:
                yield b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/models", self.list_models, methods=["GET"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
            ]
        )

    def start(self) -> OpenAIUpstream:
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="openai-upstream", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the upstream did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)


def main(argv: list[str]) -> None:
    port, model = int(argv[0]), argv[1]
    upstream = OpenAIUpstream(model=model, key=argv[2] if len(argv) > 2 else None, port=port)
    uvicorn.run(upstream.app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
