"""Routing and proxy logic against httpx.MockTransport upstreams (no engine needed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from cortex_server.core.auth import Principal
from cortex_server.services.gateway.balancer import ReplicaBalancer
from cortex_server.services.gateway.proxy import CHAT_COMPLETIONS, EMBEDDINGS, Gateway
from cortex_server.services.gateway.streaming import RelayResponse
from cortex_server.services.gateway.transport import FRESH_CONNECTION
from cortex_server.services.gateway.upstreams import UpstreamClients
from cortex_server.services.registry import ModelRegistry, ReplicaEndpoint, ServedModel
from cortexctl.core.errors import NotFound, ServiceUnavailable, UpstreamTimeout

PRINCIPAL = Principal(kind="key", key_id=7, org_id=1, user_id=2, name="t", scopes=frozenset({"inference"}))
OK_BODY = {
    "id": "x",
    "choices": [],
    "usage": {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10},
}


def make(
    handler: Any, *, replicas: int = 2, defaults: dict[str, Any] | None = None
) -> tuple[Gateway, list[dict]]:
    registry = ModelRegistry()
    registry.put(
        ServedModel(
            served_name="org/m",
            engine="llamacpp",
            state="running",
            request_defaults=defaults or {},
            replicas=[
                ReplicaEndpoint(
                    model_id=1, model_name="m", replica_index=i, base_url=f"http://r{i}", healthy=True
                )
                for i in range(replicas)
            ],
        )
    )
    rows: list[dict] = []
    gw = Gateway(
        registry=registry,
        clients=UpstreamClients(max_connections=8, transport=httpx.MockTransport(handler)),
        balancer=ReplicaBalancer(policy="round_robin", failure_threshold=2, cooldown_s=60),
        usage=rows.append,
    )
    return gw, rows


async def forward(gw: Gateway, payload: dict[str, Any], endpoint: Any = CHAT_COMPLETIONS) -> Any:
    raw = orjson.dumps(payload)
    return await gw.forward(endpoint=endpoint, payload=orjson.loads(raw), raw=raw, principal=PRINCIPAL)


CHAT = {"model": "org/m", "messages": [{"role": "user", "content": "hi"}], "unknown_field": {"kept": True}}


async def test_body_is_forwarded_byte_for_byte_and_usage_metered() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(200, json=OK_BODY)

    gw, rows = make(handler)
    raw = b'{"model":"org/m",  "messages":[{"role":"user","content":"hi"}], "x-extra": 1}'
    resp = await gw.forward(
        endpoint=CHAT_COMPLETIONS, payload=orjson.loads(raw), raw=raw, principal=PRINCIPAL
    )
    assert resp.status_code == 200 and orjson.loads(resp.body) == OK_BODY
    assert seen == [raw]  # no defaults: not re-serialised
    [row] = rows
    assert (row["prompt_tokens"], row["completion_tokens"], row["status_code"]) == (4, 6, 200)
    assert (row["api_key_id"], row["org_id"], row["user_id"], row["model"]) == (7, 1, 2, "org/m")
    assert row["streamed"] is False and row["cancelled"] is False and row["replica"] == "m/0"


async def test_request_defaults_fill_only_what_the_client_omitted() -> None:
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(orjson.loads(request.content))
        return httpx.Response(200, json=OK_BODY)

    gw, _ = make(handler, defaults={"temperature": 0.2, "max_tokens": 16})
    await forward(gw, {**CHAT, "temperature": 0.9})
    assert seen[0]["temperature"] == 0.9 and seen[0]["max_tokens"] == 16
    assert seen[0]["unknown_field"] == {"kept": True}


async def test_connect_error_retries_the_next_replica_and_trips_the_breaker() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        if request.url.host == "r0":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=OK_BODY)

    gw, rows = make(handler)
    for _ in range(4):
        assert (await forward(gw, CHAT)).status_code == 200
    assert len(rows) == 4 and {r["replica"] for r in rows} == {"m/1"}
    assert calls.count("r0") == 2  # ejected after two consecutive failures, then skipped
    assert gw.registry.require("org/m").replicas[0].healthy is False


async def test_no_healthy_replica_is_503_naming_the_state() -> None:
    gw, rows = make(lambda r: httpx.Response(200, json=OK_BODY))
    model = gw.registry.require("org/m")
    model.state = "loading"
    for r in model.replicas:
        r.healthy = False
    with pytest.raises(ServiceUnavailable, match="state: loading"):
        await forward(gw, CHAT)
    assert rows == []  # never reached an engine


async def test_unknown_model_is_404_telling_how_to_list() -> None:
    gw, _ = make(lambda r: httpx.Response(200, json=OK_BODY))
    with pytest.raises(NotFound, match="GET /v1/models") as info:
        await forward(gw, {**CHAT, "model": "nope"})
    assert info.value.param == "model"


async def test_upstream_error_passes_through_with_its_status() -> None:
    err = {"error": {"message": "context too long", "type": "invalid_request_error", "code": 400}}
    gw, rows = make(lambda r: httpx.Response(400, json=err))
    resp = await forward(gw, CHAT)
    assert resp.status_code == 400 and orjson.loads(resp.body) == err
    assert rows[0]["status_code"] == 400


async def test_upstream_timeout_is_504_and_metered() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    gw, rows = make(handler, replicas=1)
    with pytest.raises(UpstreamTimeout):
        await forward(gw, CHAT)
    assert rows[0]["status_code"] == 504


async def test_embeddings_usage_is_taken_without_decoding_vectors() -> None:
    body = {"data": [{"embedding": [0.5] * 64, "index": 0}], "usage": {"prompt_tokens": 3, "total_tokens": 3}}
    gw, rows = make(lambda r: httpx.Response(200, json=body))
    resp = await forward(gw, {"model": "org/m", "input": "x"}, EMBEDDINGS)
    assert orjson.loads(resp.body) == body and rows[0]["prompt_tokens"] == 3


SSE = [
    b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n',
    b'data: {"choices":[{"index":0,"delta":{"content":"b"}}]}\n\n',
    b'data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":2}}\n\n',
    b"data: [DONE]\n\n",
]


async def run_asgi(resp: Any, *, disconnect_after: float | None = None) -> list[bytes]:
    sent: list[bytes] = []
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if disconnect_after is None:
            await asyncio.Event().wait()
        await asyncio.sleep(disconnect_after)
        gone.set()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(message["body"])

    await resp({"type": "http"}, receive, send)
    return sent


async def test_stream_asks_for_usage_and_strips_it_for_the_client() -> None:
    seen: list[dict] = []

    async def body() -> AsyncIterator[bytes]:
        for chunk in SSE:
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(orjson.loads(request.content))
        return httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"})

    gw, rows = make(handler)
    resp = await forward(gw, {**CHAT, "stream": True})
    assert isinstance(resp, RelayResponse)
    out = b"".join(await run_asgi(resp))
    assert seen[0]["stream_options"] == {"include_usage": True}
    assert out == SSE[0] + SSE[1] + SSE[3]
    [row] = rows
    assert row["streamed"] and row["completion_tokens"] == 2 and row["ttft_ms"] is not None
    assert row["status_code"] == 200 and not row["cancelled"]


async def test_client_disconnect_cancels_the_upstream_and_is_metered() -> None:
    closed = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield SSE[0]
            while True:
                await asyncio.sleep(0.01)
                yield SSE[1]
        finally:
            closed.set()

    gw, rows = make(lambda r: httpx.Response(200, content=body()))
    resp = await forward(gw, {**CHAT, "stream": True, "stream_options": {"include_usage": True}})
    await asyncio.wait_for(run_asgi(resp, disconnect_after=0.05), 2)
    await asyncio.wait_for(closed.wait(), 1)
    [row] = rows
    assert row["cancelled"] is True and row["status_code"] == 499
    assert gw.registry.require("org/m").replicas[0].outstanding == 0


async def test_a_dropped_keepalive_connection_is_retried_once_on_the_same_replica() -> None:
    calls: list[str] = []
    fresh: list[bool] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        fresh.append(bool(request.extensions.get(FRESH_CONNECTION)))
        if len(calls) == 1:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.Response(200, json=OK_BODY)

    gw, rows = make(handler)
    assert (await forward(gw, CHAT)).status_code == 200
    assert calls == ["r0", "r0"] and fresh == [False, True]  # the retry never takes another pooled one
    assert gw.registry.require("org/m").replicas[0].consecutive_failures == 0
    assert len(rows) == 1


async def test_engine_dying_mid_stream_ends_the_stream_with_an_error_event() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield SSE[0]
        raise httpx.ReadError("peer closed")

    gw, rows = make(lambda r: httpx.Response(200, content=body()), replicas=1)
    resp = await forward(gw, {**CHAT, "stream": True})
    out = b"".join(await run_asgi(resp))
    assert out.startswith(SSE[0])
    error = orjson.loads(out[len(SSE[0]) :].removeprefix(b"data: "))
    assert error["error"]["code"] == "upstream_unreachable"
    assert rows[0]["status_code"] == 502 and not rows[0]["cancelled"]


async def test_each_replica_gets_its_own_engine_key_streams_too() -> None:
    seen: list[tuple[str, str | None]] = []

    async def sse_body() -> AsyncIterator[bytes]:
        for chunk in SSE:
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        if request.headers.get("accept") == "text/event-stream":
            return httpx.Response(200, content=sse_body(), headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=OK_BODY)

    registry = ModelRegistry()
    registry.put(
        ServedModel(
            served_name="org/m",
            engine="llamacpp",
            state="running",
            replicas=[
                ReplicaEndpoint(
                    model_id=1,
                    model_name="m",
                    replica_index=i,
                    base_url=f"http://r{i}",
                    healthy=True,
                    api_key=key,
                )
                for i, key in enumerate(["key-0", "key-1"])
            ],
        )
    )
    gw = Gateway(
        registry=registry,
        clients=UpstreamClients(max_connections=8, transport=httpx.MockTransport(handler)),
        balancer=ReplicaBalancer(policy="round_robin", failure_threshold=2, cooldown_s=60),
        usage=lambda row: None,
    )
    await forward(gw, CHAT)
    await forward(gw, CHAT)
    stream = await forward(gw, {**CHAT, "stream": True})
    assert isinstance(stream, RelayResponse)
    await run_asgi(stream)
    assert sorted(seen[:2]) == [("r0", "Bearer key-0"), ("r1", "Bearer key-1")]
    assert seen[2][1] == f"Bearer key-{seen[2][0][1]}"
    # a restarted engine on the same URL gets a new key: the registry replaces the replica
    registry.put(
        ServedModel(
            served_name="org/m",
            engine="llamacpp",
            state="running",
            replicas=[
                ReplicaEndpoint(
                    model_id=1,
                    model_name="m",
                    replica_index=0,
                    base_url="http://r0",
                    healthy=True,
                    api_key="key-new",
                )
            ],
        )
    )
    seen.clear()
    await forward(gw, CHAT)
    assert seen == [("r0", "Bearer key-new")]
    assert "key-new" not in repr(registry.require("org/m").replicas[0])
