"""Join tokens (docs/protocol.md, "Join tokens"): who may enter which room.

HS256 with SWITCHBOARD_JOIN_SECRET; RS256 and ES256 with SWITCHBOARD_JOIN_PUBLIC_KEY, for
issuers that must not share a secret. A token names its room (`room`) and an expiry
(`exp`); `nbf` is honoured, with 30 s of leeway for clock skew. The key a token is checked
with follows from its algorithm, never the other way round: a token cannot make a public
key serve as an HMAC secret.
"""

from __future__ import annotations

from pathlib import Path

import jwt
import msgspec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

LEEWAY_S = 30
_PUBLIC_KEY_ALGORITHMS = ("RS256", "ES256")


class JoinTokens:
    """The configured keys; `allows` is the whole check."""

    __slots__ = ("_secret", "_public_key")

    def __init__(self, secret: str, public_key: str) -> None:
        self._secret = secret
        self._public_key = read_public_key(public_key) if public_key else ""

    @property
    def required(self) -> bool:
        return bool(self._secret or self._public_key)

    def allows(self, token: object, room_id: str) -> bool:
        """Whether `token` (a string, or the JSON of one) lets its bearer into `room_id`
        now."""
        if isinstance(token, bytes):
            try:
                token = msgspec.json.decode(token, type=str) if token else None
            except msgspec.DecodeError:  # ValidationError is one: not a string
                return False
        if not isinstance(token, str) or not token:
            return False
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if algorithm == "HS256" and self._secret:
                key = self._secret
            elif algorithm in _PUBLIC_KEY_ALGORITHMS and self._public_key:
                key = self._public_key
            else:
                return False
            claims = jwt.decode(token, key, algorithms=[algorithm], leeway=LEEWAY_S,
                                options={"require": ["exp", "room"]})
        except (jwt.PyJWTError, ValueError, TypeError):
            # Malformed, expired, not yet valid, wrongly signed, a key of the wrong kind.
            return False
        return claims.get("room") == room_id


class PublicKeyError(ValueError):
    """SWITCHBOARD_JOIN_PUBLIC_KEY holds no usable public key."""


def read_public_key(value: str) -> str:
    """SWITCHBOARD_JOIN_PUBLIC_KEY: the PEM itself, or the path of a file holding it.
    Checked here, so that a gateway with a broken key does not start."""
    try:
        pem = value if value.lstrip().startswith("-----BEGIN") else Path(value).read_text()
        load_pem_public_key(pem.encode())
    except (OSError, ValueError) as exc:
        raise PublicKeyError(f"SWITCHBOARD_JOIN_PUBLIC_KEY is not a PEM public key nor the path "
                        f"of one: {exc}") from None
    return pem
