"""TURN credentials and ICE servers for `joined_room` (docs/protocol.md, "TURN and ICE servers").

The credentials are the time-limited scheme that coturn's `use-auth-secret` checks (and
signaltower sends, palava-client 2.2 reads): the user name is `<unix expiry>:<peer id>`,
the password base64(HMAC-SHA1(secret, user name)). The secret stays in this process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any


class IceServers:
    """What a gateway adds to every `joined_room`, from its settings."""

    __slots__ = ("_secret", "ttl_s", "stun", "turn")

    def __init__(self, turn_secret: str, ttl_s: int, urls: list[str]) -> None:
        self._secret = turn_secret.encode()
        self.ttl_s = ttl_s
        self.stun = [url for url in urls if url.startswith("stun:")]
        # Without a secret there are no credentials, and a TURN entry without them would
        # make RTCPeerConnection throw: such URLs are left out (the gateway warns at start).
        self.turn = [url for url in urls if not url.startswith("stun:")] if turn_secret else []

    @property
    def any(self) -> bool:
        return bool(self._secret or self.stun)

    def fields(self, own_id: str, now_s: float) -> dict[str, Any]:
        """The joined_room fields for peer `own_id` at unix time `now_s`."""
        out: dict[str, Any] = {}
        if self._secret:
            user = f"{int(now_s) + self.ttl_s}:{own_id}"
            mac = hmac.new(self._secret, user.encode(), hashlib.sha1).digest()
            out["turn_user"] = user
            out["turn_password"] = base64.b64encode(mac).decode()
        servers: list[dict[str, Any]] = []
        if self.stun:
            servers.append({"urls": self.stun})
        if self.turn:
            servers.append({"urls": self.turn, "username": out["turn_user"],
                            "credential": out["turn_password"]})
        if servers:
            out["ice_servers"] = servers
        return out
