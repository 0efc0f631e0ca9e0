"""The llama.cpp probe's reading of /health and /v1/models (MockTransport; the real server
is exercised in test_llamacpp_real.py)."""

from __future__ import annotations

import httpx

from cortexctl.engines.base import ProbeState
from cortexctl.engines.llamacpp.adapter import LlamaCppEngine


def transport(health: int, models: list[str], n_ctx: int | None = 2048) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            body = {"status": "ok"} if health == 200 else {"error": {"code": 503, "message": "Loading model"}}
            return httpx.Response(health, json=body)
        if request.url.path == "/v1/models":
            return httpx.Response(
                200,
                json={"object": "list", "data": [{"id": m, "meta": {"n_ctx_train": 8192}} for m in models]},
            )
        if request.url.path == "/props" and n_ctx is not None:
            return httpx.Response(200, json={"default_generation_settings": {"n_ctx": n_ctx}})
        return httpx.Response(404)

    return httpx.MockTransport(handler)


async def probe(t: httpx.MockTransport, served: str = "tiny") -> tuple[ProbeState, str, int | None]:
    async with httpx.AsyncClient(transport=t) as client:
        p = await LlamaCppEngine().probe(client, "http://engine", served_name=served)
    return p.state, p.detail, p.max_model_len


async def test_loading_while_503() -> None:
    assert (await probe(transport(503, [])))[0] == ProbeState.LOADING


async def test_ready_needs_the_served_name() -> None:
    state, detail, _ = await probe(transport(200, ["other"]))
    assert state == ProbeState.LOADING and "tiny" in detail
    assert await probe(transport(200, ["tiny"])) == (ProbeState.READY, "ready", 2048)
    assert (await probe(transport(200, ["tiny"], n_ctx=None)))[2] == 8192  # falls back to n_ctx_train


async def test_down_when_nothing_answers() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert (await probe(httpx.MockTransport(refuse)))[0] == ProbeState.DOWN
    assert (await probe(transport(500, ["tiny"])))[0] == ProbeState.DOWN
