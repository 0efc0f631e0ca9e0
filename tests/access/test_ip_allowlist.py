"""IP allowlists (per key, per org; IPv4 and IPv6) and who may set X-Forwarded-For."""

from __future__ import annotations

from pathlib import Path

import pytest

from cortex_server.services.netaccess import client_ip, ip_allowed, parse_cidrs
from tests.access.conftest import make_env


@pytest.mark.parametrize(
    ("allowlist", "ip", "ok"),
    [
        ([], "198.51.100.7", True),
        (["10.0.0.0/8"], "10.200.3.4", True),
        (["10.0.0.0/8"], "11.0.0.1", False),
        (["192.168.1.7"], "192.168.1.7", True),
        (["192.168.1.7"], "192.168.1.8", False),
        (["2001:db8::/32"], "2001:db8:abcd::1", True),
        (["2001:db8::/32"], "2001:db9::1", False),
        (["10.0.0.0/8"], "::ffff:10.1.2.3", True),  # v4-mapped v6 peer
        (["::/0"], "10.1.2.3", False),  # a v6 rule never admits a v4 client
        (["10.0.0.0/8"], None, False),
        (["10.0.0.0/8"], "not-an-ip", False),
    ],
)
def test_ip_allowed(allowlist: list[str], ip: str | None, ok: bool) -> None:
    assert ip_allowed(allowlist, ip) is ok


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    trusted = ["10.9.0.0/24", "fd00::/8"]
    assert client_ip(peer="198.51.100.1", forwarded_for="10.1.1.1", trusted_proxies=trusted) == "198.51.100.1"
    assert client_ip(peer="10.9.0.2", forwarded_for="203.0.113.9", trusted_proxies=trusted) == "203.0.113.9"
    # the client may prepend anything; only the hop our proxy appended counts
    assert (
        client_ip(peer="10.9.0.2", forwarded_for="10.1.1.1, 203.0.113.9", trusted_proxies=trusted)
        == "203.0.113.9"
    )
    assert (
        client_ip(peer="fd00::2", forwarded_for="2001:db8::5, 10.9.0.3", trusted_proxies=trusted)
        == "2001:db8::5"
    )
    assert client_ip(peer="10.9.0.2", forwarded_for="junk", trusted_proxies=trusted) == "10.9.0.2"
    assert client_ip(peer="10.9.0.2", forwarded_for=None, trusted_proxies=[]) == "10.9.0.2"


def test_bad_cidr_is_a_clear_400() -> None:
    with pytest.raises(Exception, match="not an IP address or CIDR"):
        parse_cidrs(["10.0.0.0/33"])


def _call(env, key: str, **headers: str) -> int:  # type: ignore[no-untyped-def]
    return env.client.post(
        "/test/inference", json={"model": "m"}, headers={**env.auth(key), **headers}
    ).status_code


def test_key_and_org_allowlists_through_the_daemon(tmp_path: Path) -> None:
    for env in make_env(tmp_path / "a", peer=("192.0.2.10", 1234)):
        inside = env.key("v4", ["inference"], allowed_ips=["192.0.2.0/24"])
        outside = env.key("v4-other", ["inference"], allowed_ips=["198.51.100.0/24", "2001:db8::/32"])
        assert _call(env, inside) == 200
        denied = env.client.post("/test/inference", json={}, headers=env.auth(outside))
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "ip_not_allowed"
        # spoofing X-Forwarded-For from an untrusted peer changes nothing
        assert _call(env, outside, **{"X-Forwarded-For": "198.51.100.4"}) == 403
        # a bad CIDR on create is a 400 that names it
        bad = env.client.post(
            "/admin/keys",
            json={"name": "b", "scopes": ["inference"], "allowed_ips": ["x/1"]},
            headers=env.auth(env.admin_token),
        )
        assert bad.status_code == 400 and "x/1" in bad.json()["error"]["message"]
        # org allowlist binds every key of the org, admin keys included
        env.org("walled", allowed_ips=["2001:db8::/32"])
        walled = env.key("walled-admin", ["admin"], org="walled")
        assert env.client.get("/admin/keys", headers=env.auth(walled)).status_code == 403
    for env in make_env(tmp_path / "b", peer=("2001:db8::77", 1234)):
        v6 = env.key("v6", ["inference"], allowed_ips=["2001:db8::/64"])
        assert _call(env, v6) == 200
        v4only = env.key("v4only", ["inference"], allowed_ips=["192.0.2.0/24"])
        assert _call(env, v4only) == 403
        env.org("walled", allowed_ips=["2001:db8::/32"])
        assert (
            env.client.get("/admin/keys", headers=env.auth(env.key("w", ["admin"], org="walled"))).status_code
            == 200
        )


def test_trusted_proxy_forwards_the_real_client(tmp_path: Path) -> None:
    for env in make_env(tmp_path / "p", peer=("10.9.0.2", 1234), trusted_proxies=["10.9.0.0/24"]):
        key = env.key("behind-proxy", ["inference"], allowed_ips=["203.0.113.0/24"])
        assert _call(env, key) == 403  # the proxy itself is not allowed
        assert _call(env, key, **{"X-Forwarded-For": "203.0.113.50"}) == 200
        assert _call(env, key, **{"X-Forwarded-For": "203.0.113.50, 198.51.100.1"}) == 403


def test_every_forwarded_for_line_is_read(tmp_path: Path) -> None:
    """A proxy that adds its own X-Forwarded-For line (instead of appending) must not let the
    client's own first line through: the lines are joined, then walked from the right."""
    for env in make_env(tmp_path / "lines", peer=("10.9.0.2", 1234), trusted_proxies=["10.9.0.0/24"]):
        key = env.key("two-lines", ["inference"], allowed_ips=["203.0.113.0/24"])
        lines = [
            ("Authorization", f"Bearer {key}"),
            ("X-Forwarded-For", "203.0.113.50"),  # forged by the client
            ("X-Forwarded-For", "198.51.100.1"),  # added by the trusted proxy: the real client
        ]
        resp = env.client.post("/test/inference", json={}, headers=lines)
        assert resp.status_code == 403, resp.text
        assert (
            client_ip(
                peer="10.9.0.2", forwarded_for="203.0.113.50,198.51.100.1", trusted_proxies=["10.9.0.0/24"]
            )
            == "198.51.100.1"
        )
