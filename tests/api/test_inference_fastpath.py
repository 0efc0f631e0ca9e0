"""The /v1 inference POSTs take the fast path (api/openai/fastpath.py) and answer exactly as
their declared routes would: same access check, same error shape, other methods to the router."""

from __future__ import annotations

import pytest

from cortex_server.api.openai import INFERENCE_ROUTES
from cortex_server.api.openai.fastpath import InferenceFastPath
from tests.access.test_every_route import flat_routes
from tests.api.conftest import Daemon


def test_the_fast_path_is_installed_for_every_inference_route(daemon: Daemon) -> None:
    app = daemon.client.app
    (fast,) = [m for m in app.user_middleware if m.cls is InferenceFastPath]
    assert set(fast.kwargs["routes"]) == {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}
    posts = {r.path for r in flat_routes(app) if "POST" in getattr(r, "methods", ())}
    assert set(INFERENCE_ROUTES) <= posts  # the framework routes still exist (OpenAPI, access table)


@pytest.mark.parametrize("path", sorted(INFERENCE_ROUTES))
def test_refusals_on_the_fast_path_match_the_declared_access(daemon: Daemon, path: str) -> None:
    c = daemon.client
    anonymous = c.post(path, json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"
    made = c.post("/admin/keys", json={"name": "reader", "scopes": ["models:read"]}, headers=daemon.headers())
    reader = c.post(path, json={"model": "m"}, headers=daemon.headers(made.json()["key"]))
    assert reader.status_code == 403 and "'inference' scope" in reader.json()["error"]["message"]
    bad = c.post(path, content=b"{not json", headers=daemon.headers())
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    unknown = c.post(
        path, json={"model": "nope", "messages": [], "input": "x", "prompt": "x"}, headers=daemon.headers()
    )
    assert unknown.status_code in (400, 404), unknown.text
    assert c.get(path, headers=daemon.headers()).status_code == 405  # not a POST: the router answers
    metrics = c.get("/metrics", headers=daemon.headers()).text
    counted = [line for line in metrics.splitlines() if line.startswith("cortex_auth_rejections_total{")]
    assert any('status="401"' in line and not line.endswith(" 0.0") for line in counted), counted
