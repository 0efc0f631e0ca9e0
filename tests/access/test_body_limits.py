"""Oversized chunked bodies: 413 on every route, and no route acts on the part it read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tests.access.conftest import make_env


def _chunks(head: bytes, *, pad: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield head
    for _ in range(pad // size + 1):
        yield b" " * size  # valid JSON whitespace: a truncated read would still parse


def test_chunked_bodies_over_the_limit_get_413_and_change_nothing(tmp_path: Path) -> None:
    for env in make_env(tmp_path / "h", max_request_body_bytes=256 * 1024):
        key = env.key("caller", ["inference"])
        create = env.client.post(
            "/admin/keys",
            content=_chunks(b'{"name": "sneaky", "scopes": ["inference"]}', pad=512 * 1024),
            headers={**env.auth(env.admin_token), "Content-Type": "application/json"},
        )
        assert create.status_code == 413 and create.json()["error"]["type"] == "invalid_request_error"
        assert "sneaky" not in [k["name"] for k in env.admin("GET", "/admin/keys")]
        infer = env.client.post(
            "/v1/chat/completions",
            content=_chunks(b'{"model": "m"}', pad=512 * 1024),
            headers={**env.auth(key), "Content-Type": "application/json"},
        )
        assert infer.status_code == 413
        small = env.client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers=env.auth(key),
        )
        assert (
            small.status_code == 404 and small.json()["error"]["code"] == "model_not_found"
        )  # read, admitted
