import httpx

from tests.support.cortexctl_cli import Cortexctl


def test_keys_create_list_revoke_through_the_daemon(cortexctl: Cortexctl) -> None:
    cortexctl.run("up", check=True)
    created = cortexctl.json("keys", "create", "--name", "app1", "--scope", "inference")
    key = created["key"]
    assert key.startswith("sk-cortex-") and len(key) >= 40

    listed = cortexctl.json("keys", "list")
    row = next(r for r in listed if r["name"] == "app1")
    assert "key" not in row and row["prefix"] == key[: len(row["prefix"])]
    assert key not in cortexctl.run("keys", "list").stdout

    url = f"http://127.0.0.1:{cortexctl.port}/admin/system"
    # an inference key is not an admin key
    assert httpx.get(url, headers={"Authorization": f"Bearer {key}"}).status_code == 403

    dup = cortexctl.run("keys", "create", "--name", "app1", "--scope", "inference")
    assert dup.returncode == 1 and "already exists" in dup.stderr

    bad = cortexctl.run("keys", "create", "--name", "x", "--scope", "root")
    assert bad.returncode == 1 and "Unknown scope" in bad.stderr

    revoked = cortexctl.json("keys", "revoke", "app1")
    assert revoked["revoked_at"]
    missing = cortexctl.run("keys", "revoke", "nope")
    assert missing.returncode == 1 and "No API key" in missing.stderr

    # the secret is stored only as a hash
    assert key.encode() not in (cortexctl.home / "cortex.db").read_bytes()


def test_keys_without_daemon_say_how_to_start_it(cortexctl: Cortexctl) -> None:
    cortexctl.run("up", check=True)
    cortexctl.run("down", check=True)
    proc = cortexctl.run("keys", "list")
    assert proc.returncode == 1 and "cortexctl up" in proc.stderr
