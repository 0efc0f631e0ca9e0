"""`cortexctl orgs|users|keys` against a real daemon, with the local admin token."""

from __future__ import annotations

import httpx
import pytest

from cortex_server.services.bootstrap import local_token_key_name
from tests.support.cortexctl_cli import Cortexctl

pytestmark = pytest.mark.slow


def test_orgs_users_keys_lifecycle_through_the_cli(cortexctl: Cortexctl) -> None:
    cortexctl.run("up", check=True)
    org = cortexctl.json("orgs", "create", "acme", "--rpm", "100", "--allow-ip", "127.0.0.0/8")
    assert org["name"] == "acme" and org["rpm_limit"] == 100 and org["allowed_ips"] == ["127.0.0.0/8"]
    assert "acme" in cortexctl.run("orgs", "list", check=True).stdout
    assert cortexctl.json("orgs", "update", "acme", "--tpm", "5000")["tpm_limit"] == 5000

    user = cortexctl.json("users", "create", "ann", "--role", "admin", "--org", "acme")
    assert user["role"] == "admin" and len(user["password"]) >= 16
    assert [u["username"] for u in cortexctl.json("users", "list", "--org", "acme")] == ["ann"]
    assert cortexctl.json("users", "revoke", "ann", "--org", "acme")["is_active"] is False
    assert (
        cortexctl.json("users", "update", "ann", "--org", "acme", "--active", "--role", "viewer")["role"]
        == "viewer"
    )

    created = cortexctl.json(
        "keys", "create", "--name", "svc", "--org", "acme", "--scope", "inference", "--scope", "models:read",
        "--models", "llama", "--rpm", "2", "--tpm", "1000", "--max-concurrent", "1",
        "--allow-ip", "127.0.0.1/32", "--allow-ip", "::1", "--expires", "30d",
    )  # fmt: skip
    key = created["key"]
    assert created["allowed_ips"] == ["127.0.0.1/32", "::1/128"] and created["allowed_models"] == ["llama"]
    assert created["rpm_limit"] == 2 and created["max_concurrent"] == 1 and created["expires_at"]
    shown = cortexctl.json("keys", "show", "svc", "--org", "acme")
    assert "key" not in shown and shown["scopes"] == ["inference", "models:read"]
    assert key not in cortexctl.run("keys", "list", "--org", "acme", check=True).stdout
    assert cortexctl.json("keys", "update", "svc", "--org", "acme", "--rpm", "50")["rpm_limit"] == 50

    # the key works against the daemon (scoped to its org), then revoke → refused
    url = f"http://127.0.0.1:{cortexctl.port}"
    assert httpx.get(url + "/admin/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert httpx.get(url + "/admin/keys", headers={"Authorization": f"Bearer {key}"}).status_code == 403
    assert cortexctl.json("keys", "revoke", "svc", "--org", "acme")["revoked_at"]
    assert httpx.get(url + "/admin/models", headers={"Authorization": f"Bearer {key}"}).status_code == 401

    bad = cortexctl.run("keys", "create", "--name", "x", "--scope", "inference", "--expires", "soon")
    assert bad.returncode == 1 and "not a duration" in bad.stderr
    bad_ip = cortexctl.run("keys", "create", "--name", "x", "--scope", "inference", "--allow-ip", "300.1.1.1")
    assert bad_ip.returncode == 1 and "not an IP address or CIDR" in bad_ip.stderr

    cortexctl.run("keys", "delete", "svc", "--org", "acme", check=True)
    assert cortexctl.json("keys", "list", "--org", "acme") == []
    assert cortexctl.json("users", "end-sessions", "ann", "--org", "acme") == {"sessions_ended": "ann"}
    cortexctl.run("users", "delete", "ann", "--org", "acme", check=True)
    cortexctl.run("orgs", "delete", "acme", check=True)
    gone = cortexctl.run("orgs", "show", "acme")
    assert gone.returncode == 1 and "No organization" in gone.stderr
    # the audit log recorded who did what, from where
    token = (cortexctl.home / "admin.token").read_text().strip()
    audit = httpx.get(url + "/admin/audit", headers={"Authorization": f"Bearer {token}"}).json()
    actions = {r["action"] for r in audit}
    assert {"orgs.create", "users.create", "keys.create", "keys.revoke", "orgs.delete"} <= actions
    local = "key:" + local_token_key_name(cortexctl.home)  # the per-host local admin token
    assert all(r["actor"] == local and r["client_ip"] == "127.0.0.1" for r in audit)
