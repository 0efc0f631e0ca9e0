"""Engine error answers → what the client sees (httpx.MockTransport engines; the real
llama-server's own answers are in test_client_errors_llama.py).

A client's mistake is never a 5xx: engine 4xx keep their status in OpenAI's shape, the
5xx an engine gives for a client's mistake (its own list) become 400 with its message,
501 becomes 400, and the engine refusing the gateway's credentials is a 502.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from cortex_server.api.openai.embeddings.router import refuse_unless_embeddings
from cortex_server.core.auth import Principal
from cortex_server.services.gateway.balancer import ReplicaBalancer
from cortex_server.services.gateway.proxy import CHAT_COMPLETIONS, Gateway
from cortex_server.services.gateway.upstreams import UpstreamClients
from cortex_server.services.registry import ModelRegistry, ReplicaEndpoint, ServedModel
from cortexctl.core.errors import InvalidRequest
from cortexctl.engines.llamacpp.adapter import CLIENT_ERRORS

PRINCIPAL = Principal(kind="key", key_id=7, org_id=1, user_id=2, name="t", scopes=frozenset({"inference"}))
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def llama_error(status: int, message: str, type_: str) -> httpx.Response:
    """llama-server's own error body (tools/server/server-common.cpp: format_error_response)."""
    return httpx.Response(status, json={"error": {"code": status, "message": message, "type": type_}})


def gateway(answer: httpx.Response, *, engine: str = "llamacpp") -> tuple[Gateway, list[dict[str, Any]]]:
    registry = ModelRegistry()
    registry.put(
        ServedModel(
            served_name="m",
            engine=engine,
            state="running",
            replicas=[ReplicaEndpoint(model_id=1, model_name="m-cpu", replica_index=0, base_url="http://r0")],
        )
    )
    registry.mark_replica_health("m", "m-cpu/0", healthy=True)
    rows: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    gw = Gateway(
        registry=registry,
        clients=UpstreamClients(max_connections=4, transport=httpx.MockTransport(handler)),
        balancer=ReplicaBalancer(policy="round_robin", failure_threshold=3, cooldown_s=60),
        usage=rows.append,
    )
    return gw, rows


async def send(gw: Gateway, *, stream: bool) -> tuple[int, dict[str, Any]]:
    payload = {**CHAT, "stream": stream}
    raw = orjson.dumps(payload)
    resp = await gw.forward(endpoint=CHAT_COMPLETIONS, payload=payload, raw=raw, principal=PRINCIPAL)
    assert resp.headers["x-request-id"]  # kept when the body is rewritten: it names the usage row
    return resp.status_code, orjson.loads(resp.body)


TOOLS = "tools param requires --jinja flag"
IMAGE = "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj"

MATRIX = [
    # (engine answer, status the client gets, text its message must contain, code)
    (llama_error(400, "context too long", "exceed_context_size_error"), 400, "context too long", None),
    (llama_error(500, TOOLS, "server_error"), 400, TOOLS, "unsupported_by_model"),
    (llama_error(500, IMAGE, "server_error"), 400, "image input is not supported", "unsupported_by_model"),
    (
        llama_error(501, "This server does not support embeddings. Start it with `--embeddings`", "x"),
        400,
        "does not support embeddings",
        "unsupported_by_model",
    ),
    (llama_error(500, "failed to decode the batch", "server_error"), 500, "failed to decode", None),
    (llama_error(401, "Invalid API Key", "authentication_error"), 502, "refused the gateway", None),
    (
        httpx.Response(422, json={"object": "error", "message": "bad logprobs", "type": "BadRequestError"}),
        422,
        "bad logprobs",
        None,
    ),
    (httpx.Response(400, text="plain text complaint"), 400, "plain text complaint", None),
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("answer", "status", "text", "code"), MATRIX, ids=lambda v: str(v)[:30])
async def test_engine_errors_reach_the_client_as_the_right_status(
    answer: httpx.Response, status: int, text: str, code: str | None, stream: bool
) -> None:
    gw, rows = gateway(answer)
    got_status, body = await send(gw, stream=stream)
    assert got_status == status
    assert text in body["error"]["message"] and isinstance(body["error"]["type"], str)
    if code is not None:
        assert body["error"]["code"] == code
    assert rows[0]["status_code"] == status  # metered as the client saw it


@pytest.mark.parametrize(("marker", "fix"), CLIENT_ERRORS, ids=[m for m, _ in CLIENT_ERRORS])
async def test_every_listed_llama_client_error_becomes_a_400_with_the_engine_message(
    marker: str, fix: str | None
) -> None:
    message = f"{marker} (detail from the engine)"
    status, body = await send(gateway(llama_error(500, message, "server_error"))[0], stream=False)
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    assert message in body["error"]["message"]
    if fix:
        assert fix in body["error"]["message"]


async def test_the_list_is_the_engines_own() -> None:
    """vLLM does not raise llama-server's messages: on a vLLM model the same 500 stays a 500."""
    status, _ = await send(gateway(llama_error(500, TOOLS, "server_error"), engine="vllm")[0], stream=False)
    assert status == 500


def _model(serves: bool | None) -> ModelRegistry:
    registry = ModelRegistry()
    registry.put(
        ServedModel(
            served_name="chat",
            engine="llamacpp",
            state="running",
            recipe="chat-cpu",
            serves_embeddings=serves,
            embeddings_setting="spec.args.embeddings: true",
        )
    )
    return registry


def test_embeddings_to_a_model_whose_recipe_serves_none_is_a_400_naming_the_setting() -> None:
    with pytest.raises(InvalidRequest) as info:
        refuse_unless_embeddings(_model(False), {"model": "chat", "input": "x"})
    assert info.value.status_code == 400 and info.value.param == "model"
    assert "chat-cpu" in info.value.message and "spec.args.embeddings: true" in info.value.message


@pytest.mark.parametrize("serves", [True, None])
def test_embeddings_pass_when_the_recipe_serves_them_or_leaves_it_to_the_engine(serves: bool | None) -> None:
    payload = {"model": "chat", "input": "x"}
    assert refuse_unless_embeddings(_model(serves), payload) is payload
    assert refuse_unless_embeddings(_model(False), {"model": "other", "input": "x"})["model"] == "other"
