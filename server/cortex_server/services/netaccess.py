"""Client addresses and IP allowlists.

The client address is the TCP peer, unless the peer is a configured trusted proxy: then
X-Forwarded-For is walked from the right (the address each proxy appended) and the first
hop that is not itself a trusted proxy is the client. A header sent by anyone else is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

from cortexctl.core.errors import InvalidRequest

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_cidrs(values: Iterable[str], *, param: str = "allowed_ips") -> list[str]:
    """Normalise CIDRs ('10.0.0.1' → '10.0.0.1/32'); a bad one is a 400 that names it."""
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise InvalidRequest(
                f"{value!r} is not an IP address or CIDR.",
                fix="Use forms like 10.0.0.0/8, 192.168.1.7 or 2001:db8::/32.",
                param=param,
            ) from None
    return out


@lru_cache(maxsize=4096)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _address(value: str | None) -> IPAddress | None:
    if not value:
        return None
    try:
        addr = ipaddress.ip_address(value.strip().split("%", 1)[0])
    except ValueError:
        return None
    # an IPv4 client seen through a dual-stack socket: compare it as IPv4
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def in_networks(ip: str | None, cidrs: Sequence[str]) -> bool:
    addr = _address(ip)
    if addr is None:
        return False
    return any(addr.version == net.version and addr in net for net in _networks(tuple(cidrs)))


def ip_allowed(allowlist: Sequence[str], client_ip: str | None) -> bool:
    """An empty allowlist admits every address; otherwise the client must be inside one CIDR."""
    return not allowlist or in_networks(client_ip, allowlist)


def client_ip(*, peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[str]) -> str | None:
    if peer is None or not trusted_proxies or not in_networks(peer, trusted_proxies):
        return peer
    hops = [h.strip() for h in (forwarded_for or "").split(",") if h.strip()]
    for hop in reversed(hops):
        if _address(hop) is None:
            return peer  # garbage in the header: trust nothing in it
        if not in_networks(hop, trusted_proxies):
            return str(_address(hop))
    return str(_address(hops[0])) if hops else peer


def forwarded_https(*, peer: str | None, forwarded_proto: str | None, trusted_proxies: Sequence[str]) -> bool:
    """X-Forwarded-Proto: https, believed only from a trusted proxy."""
    if not forwarded_proto or peer is None or not in_networks(peer, trusted_proxies):
        return False
    return forwarded_proto.split(",")[0].strip().lower() == "https"
