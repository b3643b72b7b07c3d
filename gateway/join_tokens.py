"""Join tokens (docs/protocol.md, "Join tokens"): who may enter which room.

HS256 with SWITCHBOARD_JOIN_SECRET; RS256 and ES256 with SWITCHBOARD_JOIN_PUBLIC_KEY, for
issuers that must not share a secret. A token names its room (`room`) and an expiry
(`exp`); `nbf` is honoured, with 30 s of leeway for clock skew. The key a token is checked
with follows from its algorithm, never the other way round: a token cannot make a public
key serve as an HMAC secret.

A token may also carry who its bearer is (docs/protocol.md, "Identities and roles"): `sub`,
`info` and `host`, and when a room it starts ends (`room_ends_at`, "Deadlines"). A claim of
the wrong type or size, or a deadline already past, makes the whole token not allowed.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import jwt
import msgspec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

LEEWAY_S = 30
_PUBLIC_KEY_ALGORITHMS = ("RS256", "ES256")
MAX_INFO_BYTES = 1024  # `info`, as JSON
# A deadline past this (unix ms of year 9999) is as good as none, and stays an int64.
MAX_ENDS_AT_MS = 253_402_300_799_000


class Identity(NamedTuple):
    """The bearer as the app names it: its user id ("": none), its public info as JSON
    text (b"": none), whether it holds the host grant; and the deadline (ms, 0: none) of
    a room its join starts."""

    user: str = ""
    info: bytes = b""
    host: bool = False
    ends_at: int = 0


NO_IDENTITY = Identity()


class _IdentityClaims(msgspec.Struct):
    """The identity claims' shapes; a token's other claims are ignored here."""

    sub: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | msgspec.UnsetType = (
        msgspec.UNSET)
    info: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    host: bool = False
    room_ends_at: float | msgspec.UnsetType = msgspec.UNSET  # unix seconds (ints too)


def identity_of(claims: dict[str, Any], now_s: float | None = None) -> Identity | None:
    """The identity a token's verified claims give; None when a claim is malformed, or
    names a deadline that has passed by `now_s` (default: now)."""
    try:
        # Strict: `host` must be a bool, `room_ends_at` a number (not a bool, not text).
        parsed = msgspec.convert(claims, _IdentityClaims)
    except msgspec.ValidationError:
        return None
    info = b"" if parsed.info is msgspec.UNSET else msgspec.json.encode(parsed.info)
    if len(info) > MAX_INFO_BYTES:
        return None
    ends_at = 0
    if parsed.room_ends_at is not msgspec.UNSET:
        if not math.isfinite(parsed.room_ends_at):
            return None  # PyJWT's JSON reads Infinity and NaN
        if parsed.room_ends_at <= (time.time() if now_s is None else now_s):
            return None  # the room it would start would end at once
        ends_at = int(min(parsed.room_ends_at * 1000, MAX_ENDS_AT_MS))
    user = "" if parsed.sub is msgspec.UNSET else parsed.sub
    return Identity(user, info, parsed.host, ends_at)


class JoinTokens:
    """The configured keys; `identity` is the whole check."""

    __slots__ = ("_secret", "_public_key")

    def __init__(self, secret: str, public_key: str) -> None:
        self._secret = secret
        self._public_key = read_public_key(public_key) if public_key else ""

    @property
    def required(self) -> bool:
        return bool(self._secret or self._public_key)

    def allows(self, token: object, room_id: str) -> bool:
        """Whether `token` lets its bearer into `room_id` now (see `identity`)."""
        return self.identity(token, room_id) is not None

    def identity(self, token: object, room_id: str) -> Identity | None:
        """Who `token` (a string, or the JSON of one) says its bearer is, when it lets the
        bearer into `room_id` now; None when it does not."""
        if isinstance(token, bytes):
            try:
                token = msgspec.json.decode(token, type=str) if token else None
            except msgspec.DecodeError:  # ValidationError is one: not a string
                return None
        if not isinstance(token, str) or not token:
            return None
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if algorithm == "HS256" and self._secret:
                key = self._secret
            elif algorithm in _PUBLIC_KEY_ALGORITHMS and self._public_key:
                key = self._public_key
            else:
                return None
            claims = jwt.decode(token, key, algorithms=[algorithm], leeway=LEEWAY_S,
                                options={"require": ["exp", "room"]})
        except (jwt.PyJWTError, ValueError, TypeError):
            # Malformed, expired, not yet valid, wrongly signed, a key of the wrong kind.
            return None
        return identity_of(claims) if claims.get("room") == room_id else None


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
