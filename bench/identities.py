"""Join tokens that give the benchmark's peers identities (docs/protocol.md, "Join tokens"
and "Identities and roles"): HS256, signed with the secret the servers under test are
started with, naming the room, a user (`sub`) and about 200 bytes of public `info`, as an
app's token for a named participant with an avatar would.

Minted by the load generator while it sets up, never inside a measured window.
"""

from __future__ import annotations

import json
import time

import jwt

# The servers' SWITCHBOARD_JOIN_SECRET and SWITCHBOARD_ADMIN_KEY in the scenarios that
# set them (32 bytes and more: PyJWT warns of shorter HS256 keys).
JOIN_SECRET = "bench-join-secret-0123456789abcdef"
ADMIN_KEY = "bench-admin-key-0123456789abcdef"
# Long enough for any run: a token is checked at the join only.
_LIFETIME_S = 3600


def info_of(user: str) -> dict[str, str]:
    """A participant's public info, about 200 bytes as JSON."""
    return {"name": f"Participant {user}", "avatar":
            f"https://cdn.example.com/avatars/{user}/profile-128x128.png",
            "role": "viewer", "organisation": "Example Learning Ltd",
            "locale": "en-GB", "timezone": "Europe/London"}


INFO_BYTES = len(json.dumps(info_of("b0-0-00000"), separators=(",", ":")))


def join_token(room: str, user: str, secret: str = JOIN_SECRET) -> str:
    """A token that lets `user` into `room`, with `sub` and `info`."""
    return jwt.encode({"room": room, "exp": int(time.time()) + _LIFETIME_S, "sub": user,
                       "info": info_of(user)}, secret, algorithm="HS256")
