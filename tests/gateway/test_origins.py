"""Allowed origins (docs/protocol.md, "Origins")."""

from __future__ import annotations

import pytest

from gateway.origins import AllowedOrigins

LISTED = AllowedOrigins(["https://app.example.com", "https://*.example.org",
                         "http://127.0.0.1:8080"])


@pytest.mark.parametrize("origin", [
    "https://app.example.com", "HTTPS://App.Example.COM",
    "https://a.example.org", "https://a.b.example.org", "http://127.0.0.1:8080",
    None,  # no Origin header: not a browser
])
def test_listed_origins_and_requests_without_one_are_allowed(origin: str | None) -> None:
    assert LISTED.allows(origin)


@pytest.mark.parametrize("origin", [
    "https://example.org",  # the wildcard stands for at least one label
    "https://evil.com", "https://app.example.com.evil.com", "https://a.example.org.evil.com",
    "http://app.example.com",  # another scheme
    "https://app.example.com:8443",  # another port
    "http://127.0.0.1:8081", "null", "",
])
def test_other_origins_are_refused(origin: str) -> None:
    assert not LISTED.allows(origin)


def test_unset_allows_every_origin() -> None:
    assert AllowedOrigins([]).allows("https://anywhere.example")
