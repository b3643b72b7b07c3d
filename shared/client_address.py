"""Who a socket's client is, by address: the TCP peer, or, behind reverse proxies the
operator trusts (SWITCHBOARD_TRUSTED_PROXIES), the address they name in
`X-Forwarded-For`. Pure: the upgrade (gateway/ws_upgrade.py) hands it what it read, and
the settings check the operator's list with it.

Each proxy appends the address it got the request from, so the list is read from the
right: the first address that is not a trusted proxy is the client. Anything left of it
was written by the client itself and proves nothing. From a peer that is not trusted, the
header is ignored altogether: anyone can send one.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network


class TrustedProxies:
    """The networks (addresses or CIDR blocks) whose `X-Forwarded-For` is believed."""

    def __init__(self, spec: str) -> None:
        """`spec`: comma-separated; raises ValueError naming what is not an address."""
        self.networks: list[IPv4Network | IPv6Network] = []
        for part in (p.strip() for p in spec.split(",")):
            if part:
                try:
                    self.networks.append(ip_network(part, strict=False))
                except ValueError:
                    raise ValueError(f"{part!r} is not an address or a network") from None

    def trusts(self, address: str) -> bool:
        try:
            parsed = ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self.networks)

    def client_of(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address: `peer`, unless `peer` is a trusted proxy that says whom
        it forwards for."""
        if not forwarded_for or not self.networks or not self.trusts(peer):
            return peer  # (without trusted proxies, the usual case, no address is parsed)
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop if _is_address(hop) else peer
        return hops[0] if hops else peer


def _is_address(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True
