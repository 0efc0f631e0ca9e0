"""IP allowlists (per key, per org; IPv4 and IPv6) and who may set X-Forwarded-For: the rules."""

from __future__ import annotations

import pytest

from cortex_server.services.netaccess import client_ip, ip_allowed, parse_cidrs


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


# Allowlists through the real /v1 routes of a daemon process, peers on real sockets (trusted
# proxies, IPv4/IPv6 clients, org-wide lists): tests/access/test_gateway_access.py.
