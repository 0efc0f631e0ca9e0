"""Errors from a live daemon, in OpenAI's shape, as the official SDK sees them."""

from __future__ import annotations

import httpx
import openai
import pytest
from gateway_support import LiveDaemon

from cortex_server.services.registry import ServedModel


def test_unknown_model_is_not_found_with_how_to_list(daemon: LiveDaemon) -> None:
    client = openai.OpenAI(base_url=daemon.base_url, api_key=daemon.api_key)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no/such-model", messages=[{"role": "user", "content": "hi"}])
    assert "GET /v1/models" in info.value.message
    assert info.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no/such-model")


def test_bad_input_is_bad_request(daemon: LiveDaemon) -> None:
    client = openai.OpenAI(base_url=daemon.base_url, api_key=daemon.api_key)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="m", messages=[])
    assert info.value.body["param"] == "messages"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="m", input=[])


def test_model_not_running_is_503_naming_its_state(daemon: LiveDaemon) -> None:
    daemon.ctx.registry.put(ServedModel(served_name="sleepy", engine="llamacpp", state="loading"))
    r = httpx.post(
        f"{daemon.base_url}/completions",
        json={"model": "sleepy", "prompt": "x"},
        headers={"authorization": f"Bearer {daemon.api_key}"},
    )
    assert r.status_code == 503
    assert "state: loading" in r.json()["error"]["message"]


def test_malformed_json_is_400_and_oversized_body_413(daemon: LiveDaemon) -> None:
    auth = {"authorization": f"Bearer {daemon.api_key}", "content-type": "application/json"}
    r = httpx.post(f"{daemon.base_url}/chat/completions", content=b'{"model": "m", ', headers=auth)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    big = b'{"model": "m", "prompt": "' + b"x" * daemon.settings.max_request_body_bytes + b'"}'
    r = httpx.post(f"{daemon.base_url}/completions", content=big, headers=auth)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunked():  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b"x" * (daemon.settings.max_request_body_bytes // 10)

    r = httpx.post(f"{daemon.base_url}/completions", content=chunked(), headers=auth)
    assert r.status_code == 413


def test_inference_needs_a_key_with_the_inference_scope(daemon: LiveDaemon) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=daemon.base_url, api_key="sk-wrong").models.list()
    admin = {"authorization": f"Bearer {daemon.api_key}"}
    r = httpx.post(
        f"{daemon.settings.url}/admin/keys", json={"name": "reader", "scopes": ["models:read"]}, headers=admin
    )
    assert r.status_code == 201, r.text
    reader = openai.OpenAI(base_url=daemon.base_url, api_key=r.json()["key"])
    assert reader.models.list().data == []
    with pytest.raises(openai.PermissionDeniedError):
        reader.completions.create(model="m", prompt="x")
