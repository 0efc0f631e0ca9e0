"""An admin write is visible to the next request the moment its response arrives.

Each write is sent straight to the ASGI app; when its last response byte goes out, the `send`
callback (the client "receiving" it) makes the next request at once, through the same app,
before the app has run anything after the response (dependency teardown included). A route
that left its commit to teardown answers before committing, and the next request misses it.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.api.conftest import Daemon
from tests.api.test_admin_recipes import RECIPE


def _request(method: str, path: str, token: str, body: Any = None) -> tuple[dict[str, Any], Any]:
    """An ASGI scope and a `receive` that gives the body, then a disconnect."""
    raw = orjson.dumps(body) if body is not None else b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            (b"host", b"testserver"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return {"type": "http.disconnect"}

    return scope, receive


async def write_then_read(
    app: Any, token: str, write: tuple[str, str, Any], read: tuple[str, str]
) -> tuple[int, int, bytes]:
    """(write status, read status, read body), the read made as the write's last byte arrives."""
    scope, receive = _request(write[0], write[1], token, write[2])
    seen: dict[str, Any] = {}
    status = 0

    async def read_now() -> None:
        rscope, rreceive = _request(read[0], read[1], token)
        body = bytearray()

        async def rsend(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await app(rscope, rreceive, rsend)
        seen["body"] = bytes(body)

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            await read_now()  # the client has the whole answer: its next request starts now

    await app(scope, receive, send)
    return status, seen["status"], seen["body"]


@pytest.mark.parametrize(
    ("write", "read", "expect"),
    [
        (("POST", "/admin/recipes", {"yaml": RECIPE}), ("GET", "/admin/recipes/tiny"), 200),
        (("PUT", "/admin/recipes/tiny", {"yaml": RECIPE.replace("1024", "2048")}), None, 200),
        (("DELETE", "/admin/recipes/tiny", None), ("GET", "/admin/recipes/tiny"), 404),
        (("POST", "/admin/models", {"recipe": "tiny", "name": "m1"}), ("GET", "/admin/models/m1"), 200),
        (("DELETE", "/admin/models/m1", None), ("GET", "/admin/models/m1"), 404),
        (("POST", "/admin/orgs", {"name": "acme"}), ("GET", "/admin/orgs/acme"), 200),
        (("POST", "/admin/keys", {"name": "k1", "scopes": ["inference"]}), ("GET", "/admin/keys/k1"), 200),
    ],
    ids=["recipe-create", "recipe-update", "recipe-delete", "model-create", "model-delete", "org", "key"],
)
def test_an_admin_write_is_visible_to_the_next_request_at_once(
    daemon: Daemon, write: tuple[str, str, Any], read: tuple[str, str] | None, expect: int
) -> None:
    client, token = daemon.client, daemon.token
    # what each write needs already in place, made the ordinary way
    if write[1] != "/admin/recipes" or write[0] != "POST":
        made = client.post("/admin/recipes", json={"yaml": RECIPE}, headers=daemon.headers())
        assert made.status_code == 201, made.text
    if write[1] == "/admin/models/m1":
        made = client.post("/admin/models", json={"recipe": "tiny", "name": "m1"}, headers=daemon.headers())
        assert made.status_code == 201, made.text

    app = client.app
    status, read_status, body = client.portal.call(
        write_then_read, app, token, write, read or ("GET", "/admin/recipes/tiny")
    )
    assert status < 300, (status, body)
    assert read_status == expect, body
    if write[0] == "PUT":
        assert b"2048" in body  # the updated recipe, not the old one
