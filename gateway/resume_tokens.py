"""Resume tokens (docs/protocol.md, "Resume"): made and read by gateways, never stored in clear.

A token is `<shard>.<peer id>.<secret>`: the shard says which stream the resume goes to
(any gateway can route it), the peer id which member it is for, and the secret, 128
random bits, that it is that member's. Relays keep only the digest of the whole token;
each resume hands out the next, so a token works once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import NamedTuple

_TOKEN = re.compile(r"(\d{1,6})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
                    r"\.([A-Za-z0-9_-]{22})")


class TokenTarget(NamedTuple):
    shard: int
    conn: str


def new_token(shard: int, conn: str) -> str:
    """A fresh token for peer `conn` of a room on `shard`."""
    return f"{shard}.{conn}.{secrets.token_urlsafe(16)}"


def token_digest(token: str) -> str:
    """What a relay stores and compares: the token's SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_target(token: str, shards: int) -> TokenTarget | None:
    """Whom a well-formed token is for; None for anything else (no relay is asked)."""
    match = _TOKEN.fullmatch(token)
    if match is None or int(match[1]) >= shards:
        return None
    return TokenTarget(int(match[1]), match[2])
