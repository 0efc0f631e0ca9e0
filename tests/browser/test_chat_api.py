"""/api/chat/* over HTTP against the real appliance: sessions only, CSRF on writes, private to
their user, metered and rate-limited under the user's org like any inference call."""

from __future__ import annotations

from contextlib import closing

import httpx
import pytest

from cortex_server.core.sessions import CSRF_HEADER
from tests.browser.conftest import SERVED, Appliance

pytestmark = pytest.mark.browser


def session_client(appliance: Appliance, username: str, password: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=appliance.url, timeout=120)
    resp = client.post("/auth/login", json={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    return client, resp.json()["csrf_token"]


def turn(client: httpx.Client, csrf: str, session_id: int, content: str, **params: object) -> httpx.Response:
    return client.post(
        f"/api/chat/sessions/{session_id}/messages",
        json={"content": content, "params": {"max_tokens": 8, **params}},
        headers={CSRF_HEADER: csrf},
    )


def test_chat_routes_take_sessions_with_csrf_only(appliance: Appliance) -> None:
    client, csrf = session_client(appliance, "api-member", appliance.user("api-member", "member"))
    with closing(client):
        assert client.post("/api/chat/sessions", json={"model": SERVED}).status_code == 403  # no CSRF header
        created = client.post("/api/chat/sessions", json={"model": SERVED}, headers={CSRF_HEADER: csrf})
        assert created.status_code == 201
        sid = created.json()["id"]
        # an API key, even an admin one, is not a browser user: no history of its own
        key = httpx.get(
            appliance.url + "/api/chat/sessions", headers={"Authorization": f"Bearer {appliance.admin_token}"}
        )
        assert key.status_code in (401, 403)
        resp = turn(client, csrf, sid, "Say hi.")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        assert "data: [DONE]" in resp.text
        detail = client.get(f"/api/chat/sessions/{sid}").json()
        assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
        assert detail["messages"][1]["content"]  # what streamed is what was stored
        assert detail["title"] == "Say hi."
        bad = client.post(
            f"/api/chat/sessions/{sid}/messages",
            json={"content": "x", "params": {"logit_bias": {"1": 100}}},
            headers={CSRF_HEADER: csrf},
        )
        assert bad.status_code == 400 and "logit_bias" in bad.json()["error"]["message"]
        unknown = client.post(
            f"/api/chat/sessions/{sid}/messages",
            json={"content": "x", "model": "no-such-model"},
            headers={CSRF_HEADER: csrf},
        )
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"


def test_a_conversation_is_private_to_its_user(appliance: Appliance) -> None:
    alice, alice_csrf = session_client(appliance, "priv-alice", appliance.user("priv-alice", "admin"))
    bob, bob_csrf = session_client(appliance, "priv-bob", appliance.user("priv-bob", "member"))
    with closing(alice), closing(bob):
        sid = alice.post(
            "/api/chat/sessions", json={"model": SERVED}, headers={CSRF_HEADER: alice_csrf}
        ).json()["id"]
        assert bob.get(f"/api/chat/sessions/{sid}").status_code == 404
        assert (
            bob.patch(
                f"/api/chat/sessions/{sid}", json={"title": "x"}, headers={CSRF_HEADER: bob_csrf}
            ).status_code
            == 404
        )
        assert bob.delete(f"/api/chat/sessions/{sid}", headers={CSRF_HEADER: bob_csrf}).status_code == 404
        assert turn(bob, bob_csrf, sid, "hi").status_code == 404
        assert sid not in [s["id"] for s in bob.get("/api/chat/sessions").json()]
        assert alice.get(f"/api/chat/sessions/{sid}").status_code == 200


def test_a_viewer_may_not_chat(appliance: Appliance) -> None:
    client, csrf = session_client(appliance, "api-viewer", appliance.user("api-viewer", "viewer"))
    with closing(client):
        assert client.get("/api/chat/sessions").status_code == 403
        assert (
            client.post("/api/chat/sessions", json={"model": SERVED}, headers={CSRF_HEADER: csrf}).status_code
            == 403
        )


def test_turns_are_rate_limited_under_the_users_org(appliance: Appliance) -> None:
    appliance.admin("POST", "/admin/orgs", json={"name": "tiny-org", "rpm_limit": 1})
    client, csrf = session_client(
        appliance, "tiny-user", appliance.user("tiny-user", "member", org="tiny-org")
    )
    with closing(client):
        sid = client.post("/api/chat/sessions", json={"model": SERVED}, headers={CSRF_HEADER: csrf}).json()[
            "id"
        ]
        first = turn(client, csrf, sid, "Say one word.")
        assert first.status_code == 200, first.text
        second = turn(client, csrf, sid, "And another.")
        assert second.status_code == 429, second.text
        assert float(second.headers["retry-after"]) > 0
        assert second.json()["error"]["type"]
        # the refused turn reached no engine and stored nothing
        roles = [m["role"] for m in client.get(f"/api/chat/sessions/{sid}").json()["messages"]]
        assert roles == ["user", "assistant"]
