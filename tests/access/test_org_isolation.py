"""Org isolation: org A's admin cannot read or change org B's keys, users, usage, audit or models."""

from __future__ import annotations

from cortex_server.db.models import UsageRecord
from tests.access.conftest import AccessEnv


def _usage(env: AccessEnv, *, org_id: int, model: str, tokens: int, n: int) -> None:
    with env.app.state.cortex.session_factory() as session:
        for i in range(n):
            session.add(
                UsageRecord(
                    request_id=f"{model}-{org_id}-{i}",
                    org_id=org_id,
                    model=model,
                    endpoint="chat.completions",
                    prompt_tokens=tokens,
                    completion_tokens=1,
                    status_code=200,
                )
            )
        session.commit()


def test_org_admins_see_and_change_only_their_own_org(env_db: AccessEnv) -> None:
    env = env_db
    a, b = env.org("org-a"), env.org("org-b")
    a_admin = env.auth(env.key("a-admin", ["admin"], org="org-a"))
    b_key = env.key("b-app", ["inference"], org="org-b")
    b_key_id = env.admin("GET", "/admin/keys", params={"org": "org-b"})[0]["id"]
    env.user("bob-b", "member", org="org-b")
    b_user_id = env.admin("GET", "/admin/users", params={"org": "org-b"})[0]["id"]
    c = env.client

    # keys: B's key by name and by id is invisible and untouchable
    assert [k["name"] for k in c.get("/admin/keys", headers=a_admin).json()] == ["a-admin"]
    for ident in ("b-app", str(b_key_id)):
        assert c.get(f"/admin/keys/{ident}", headers=a_admin).status_code == 404
        assert c.patch(f"/admin/keys/{ident}", json={"rpm_limit": 1}, headers=a_admin).status_code == 404
        assert c.post(f"/admin/keys/{ident}/revoke", headers=a_admin).status_code == 404
        assert c.delete(f"/admin/keys/{ident}", headers=a_admin).status_code == 404
    assert c.get("/admin/keys", params={"org": "org-b"}, headers=a_admin).status_code == 403
    made = c.post(
        "/admin/keys", json={"name": "sneaky", "scopes": ["inference"], "org": "org-b"}, headers=a_admin
    )
    assert made.status_code == 403
    assert c.get("/v1/models", headers=env.auth(b_key)).status_code == 200  # unharmed

    # users
    assert [u["username"] for u in c.get("/admin/users", headers=a_admin).json()] == []
    for ident in ("bob-b", str(b_user_id)):
        assert c.get(f"/admin/users/{ident}", headers=a_admin).status_code == 404
        assert c.patch(f"/admin/users/{ident}", json={"is_active": False}, headers=a_admin).status_code == 404
        assert c.delete(f"/admin/users/{ident}", headers=a_admin).status_code == 404
    assert c.get("/admin/users", params={"org": "org-b"}, headers=a_admin).status_code == 403

    # orgs: A sees itself only and cannot change any org (limits are the operator's)
    assert [o["name"] for o in c.get("/admin/orgs", headers=a_admin).json()] == ["org-a"]
    assert c.get("/admin/orgs/org-b", headers=a_admin).status_code == 404
    assert c.get(f"/admin/orgs/{b['id']}", headers=a_admin).status_code == 404
    assert c.patch("/admin/orgs/org-a", json={"rpm_limit": 10**6}, headers=a_admin).status_code == 403
    assert c.delete("/admin/orgs/org-b", headers=a_admin).status_code == 403
    assert c.post("/admin/orgs", json={"name": "mine"}, headers=a_admin).status_code == 403

    # usage and audit are aggregated from A's rows only
    _usage(env, org_id=a["id"], model="m-a", tokens=10, n=2)
    _usage(env, org_id=b["id"], model="m-b", tokens=1000, n=5)
    usage = c.get("/admin/usage", headers=a_admin).json()
    assert usage["org_id"] == a["id"]
    expected = {
        "model": "m-a",
        "requests": 2,
        "prompt_tokens": 20,
        "completion_tokens": 2,
        "total_tokens": 22,
        "errors": 0,
        "avg_latency_ms": 0.0,
    }
    assert [{k: row[k] for k in expected} for row in usage["data"]] == [expected]
    audit = c.get("/admin/audit", headers=a_admin).json()
    assert audit == [] or all(r["org_id"] == a["id"] for r in audit)
    assert all(r["target"] != "b-app" for r in audit)

    # models are appliance-wide: only operators change them
    for method, path in (
        ("POST", "/admin/models/any/start"),
        ("POST", "/admin/models/any/stop"),
        ("DELETE", "/admin/models/any"),
    ):
        assert c.request(method, path, headers=a_admin).status_code == 403
    assert c.request("POST", "/admin/models/any/start", headers=env.auth(env.admin_token)).status_code == 404


def test_session_admin_of_one_org_is_confined_too(env_db: AccessEnv) -> None:
    env = env_db  # SQLite and PostgreSQL
    env.org("org-a")
    env.org("org-b")
    env.key("b-app", ["inference"], org="org-b")
    password = env.user("carol", "admin", org="org-a")
    cookie, csrf = env.login("carol", password)
    h = env.session_headers(cookie, csrf)
    assert env.client.get("/admin/keys/b-app", headers=h).status_code == 404
    assert env.client.get("/admin/keys", params={"org": "org-b"}, headers=h).status_code == 403
    me = env.client.get("/auth/me", headers=h).json()
    assert me["org"] == "org-a" and me["operator"] is False


def test_no_privilege_escalation_through_keys_or_roles(env_db: AccessEnv) -> None:
    env = env_db  # SQLite and PostgreSQL
    member_key = env.auth(env.key("member-ish", ["keys:write", "inference"]))
    esc = env.client.post("/admin/keys", json={"name": "up", "scopes": ["admin"]}, headers=member_key)
    assert esc.status_code == 403
    ok = env.client.post("/admin/keys", json={"name": "same", "scopes": ["inference"]}, headers=member_key)
    assert ok.status_code == 201
    env.secrets.append(ok.json()["key"])
    assert (
        env.client.patch("/admin/keys/same", json={"scopes": ["admin"]}, headers=member_key).status_code
        == 403
    )
    # an org admin cannot mint owners, nor edit one
    env.org("org-a")
    password = env.user("dave", "admin", org="org-a")
    env.user("olga", "owner", org="org-a")
    cookie, csrf = env.login("dave", password)
    h = env.session_headers(cookie, csrf)
    body = {"username": "eve", "role": "owner", "password": "long-enough-password"}
    assert env.client.post("/admin/users", json=body, headers=h).status_code == 403
    assert env.client.patch("/admin/users/olga", json={"is_active": False}, headers=h).status_code == 403
    body["role"] = "member"
    assert env.client.post("/admin/users", json=body, headers=h).status_code == 201
