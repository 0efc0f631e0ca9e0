"""Token admission: the estimate counts what the engine will really generate, and a request
that can never fit the key's tokens-per-minute gets a 400 saying so, not a 429 "retry".

Before: 4 concurrent requests without max_tokens on a 300-tpm key used 1,096 tokens (the
recipe's default max_tokens was ignored) and a 5,000-prompt list counted as one request.
"""

from __future__ import annotations

from cortex_server.services.gateway.estimate import estimate_tokens
from cortex_server.services.registry import ServedModel
from tests.access.conftest import AccessEnv


def _serve(env: AccessEnv, name: str, *, max_tokens: int | None, context: int | None) -> None:
    defaults = {"max_tokens": max_tokens} if max_tokens else {}
    env.app.state.cortex.registry.put(
        ServedModel(
            served_name=name,
            engine="llamacpp",
            state="running",
            request_defaults=defaults,
            max_model_len=context,
        )
    )


def test_effective_max_tokens_request_then_recipe_default_then_context(env: AccessEnv) -> None:
    _serve(env, "with-default", max_tokens=200, context=4096)
    _serve(env, "context-only", max_tokens=None, context=700)
    h = env.auth(env.key("adm", ["inference"], tpm_limit=100_000))
    asked = env.client.post("/test/inference", json={"model": "with-default", "max_tokens": 30}, headers=h)
    assert 30 <= asked.json()["estimate"] < 60
    default = env.client.post("/test/inference", json={"model": "with-default"}, headers=h)
    assert 200 <= default.json()["estimate"] < 230  # the recipe's default, not 0
    context = env.client.post("/test/inference", json={"model": "context-only"}, headers=h)
    assert 700 <= context.json()["estimate"] < 730  # nothing set: the model's whole context


def test_every_prompt_of_a_list_and_every_choice_count(env: AccessEnv) -> None:
    h = env.auth(env.key("lists", ["inference"], tpm_limit=1_000_000))
    prompts = [f"p{i}" for i in range(50)]
    resp = env.client.post("/test/inference", json={"prompt": prompts, "max_tokens": 10}, headers=h)
    assert resp.json()["estimate"] >= 500
    tokens = env.client.post("/test/inference", json={"prompt": [1, 2, 3], "max_tokens": 10}, headers=h)
    assert tokens.json()["estimate"] < 20  # a list of token ids is one prompt
    choices = env.client.post("/test/inference", json={"messages": [], "n": 4, "max_tokens": 10}, headers=h)
    assert choices.json()["estimate"] >= 40


def test_embeddings_count_inputs_only() -> None:
    raw = b'{"input": ["' + b"a" * 4000 + b'"], "max_tokens": 999}'
    assert (
        estimate_tokens(raw, {"input": ["a" * 4000], "max_tokens": 999}, path="/v1/embeddings", served=None)
        == (len(raw) + 3) // 4
    )


def test_a_request_that_can_never_fit_the_tpm_is_a_400_not_a_429(env: AccessEnv) -> None:
    _serve(env, "big-context", max_tokens=None, context=8192)
    h = env.auth(env.key("small-tpm", ["inference"], tpm_limit=300))
    never = env.client.post("/test/inference", json={"model": "m", "max_tokens": 5000}, headers=h)
    assert never.status_code == 400 and never.json()["error"]["code"] == "exceeds_token_limit"
    assert "300 tokens per minute" in never.json()["error"]["message"]
    implicit = env.client.post("/test/inference", json={"model": "big-context"}, headers=h)
    assert implicit.status_code == 400  # 8,192 tokens of context can never fit 300/min
    many = env.client.post("/test/inference", json={"prompt": ["x"] * 5000, "max_tokens": 1}, headers=h)
    assert many.status_code == 400
    fits = env.client.post("/test/inference", json={"model": "m", "max_tokens": 100}, headers=h)
    assert fits.status_code == 200
    org_bound = env.org("tight", tpm_limit=50)
    key = env.key("in-tight", ["inference"], org=org_bound["name"])
    refused = env.client.post("/test/inference", json={"max_tokens": 100}, headers=env.auth(key))
    assert refused.status_code == 400  # the org's limit binds too
