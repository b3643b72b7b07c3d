"""Whom a socket's address is taken to be: the TCP peer, or what trusted proxies say."""

from __future__ import annotations

import pytest

from shared.client_address import TrustedProxies

PROXIES = TrustedProxies("10.0.0.0/8, 192.168.1.5, ::1")


@pytest.mark.parametrize(("peer", "forwarded_for", "client"), [
    # No proxy in front: the peer, whatever the header says.
    ("203.0.113.7", None, "203.0.113.7"),
    ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
    # A trusted proxy: the address it got the request from.
    ("10.1.2.3", "198.51.100.1", "198.51.100.1"),
    ("::1", "2001:db8::5", "2001:db8::5"),
    # Two trusted proxies: the last untrusted hop, never what the client wrote before it.
    ("10.1.2.3", "1.1.1.1, 198.51.100.1, 192.168.1.5", "198.51.100.1"),
    # Every hop trusted: the first one.
    ("10.1.2.3", "10.9.9.9, 192.168.1.5", "10.9.9.9"),
    # A hop that is no address: the proxy itself.
    ("10.1.2.3", "unknown", "10.1.2.3"),
    ("10.1.2.3", "", "10.1.2.3"),
])
def test_the_client_is_the_last_hop_no_trusted_proxy_added(
        peer: str, forwarded_for: str | None, client: str) -> None:
    assert PROXIES.client_of(peer, forwarded_for) == client


def test_nothing_trusted_by_default() -> None:
    assert TrustedProxies("").client_of("127.0.0.1", "198.51.100.1") == "127.0.0.1"


def test_a_list_with_what_is_no_address_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not an address or a network"):
        TrustedProxies("127.0.0.1, 10.0.0.0/33")
