"""Join tokens (protocol.md, "Join tokens"): every bad token is refused, both algorithms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.join_tokens import JoinTokens, PublicKeyError

SECRET = "a-secret-for-tests-of-32-bytes-or-more"
ROOM = "math-101"


def pem_pair(kind: str) -> tuple[Any, str]:
    key: Any = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "RS256"
                else ec.generate_private_key(ec.SECP256R1()))
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, public.decode()


RSA_KEY, RSA_PUBLIC = pem_pair("RS256")
EC_KEY, EC_PUBLIC = pem_pair("ES256")


def token(key: Any = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    now = int(time.time())
    body = {"room": ROOM, "exp": now + 60, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key,
                      algorithm=algorithm)


def test_without_keys_no_token_is_required() -> None:
    assert not JoinTokens("", "").required


@pytest.mark.parametrize("made", [
    token(), token(nbf=int(time.time()) + 20),  # within the 30 s leeway
    token(exp=int(time.time()) - 20),  # expired, but within the leeway
    token(iat=int(time.time()), sub="user-7"),  # other claims are fine
])
def test_a_good_hs256_token_lets_in_its_room_only(made: str) -> None:
    tokens = JoinTokens(SECRET, "")
    assert tokens.required and tokens.allows(made, ROOM)
    assert not tokens.allows(made, "another-room")


@pytest.mark.parametrize("why, made", [
    ("missing", None),
    ("empty", ""),
    ("not a string", 12),
    ("garbage", "not.a.jwt"),
    ("wrong secret", token(key="another-secret-of-32-bytes-or-more!")),
    ("other room", token(room="another-room")),
    ("no room claim", token(room=None)),
    ("no expiry", token(exp=None)),
    ("expired", token(exp=int(time.time()) - 60)),
    ("not yet valid", token(nbf=int(time.time()) + 120)),
    ("unsigned", jwt.encode({"room": ROOM, "exp": int(time.time()) + 60}, None,
                            algorithm="none")),
    ("a public-key token with no public key set", token(RSA_KEY, "RS256")),
])
def test_a_bad_token_is_refused(why: str, made: object) -> None:
    assert not JoinTokens(SECRET, "").allows(made, ROOM), why


@pytest.mark.parametrize("key, public, algorithm", [
    (RSA_KEY, RSA_PUBLIC, "RS256"), (EC_KEY, EC_PUBLIC, "ES256")])
def test_public_key_tokens(key: Any, public: str, algorithm: str) -> None:
    tokens = JoinTokens("", public)
    assert tokens.allows(token(key, algorithm), ROOM)
    assert not tokens.allows(token(key, algorithm, room="elsewhere"), ROOM)
    other_key, _ = pem_pair(algorithm)
    assert not tokens.allows(token(other_key, algorithm), ROOM)  # the wrong key
    assert not tokens.allows(token(), ROOM)  # HS256, and no secret is set


def test_a_public_key_cannot_serve_as_an_hmac_secret() -> None:
    """The classic confusion: an HS256 token signed with the public key's PEM."""
    tokens = JoinTokens("", RSA_PUBLIC)

    # PyJWT itself refuses to HMAC with a PEM: forge the token by hand.
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"room": ROOM, "exp": int(time.time()) + 60}).encode())
    mac = hmac.new(RSA_PUBLIC.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    forged = f"{head}.{body}.{b64(mac)}"
    assert not tokens.allows(forged, ROOM)


def test_both_kinds_at_once() -> None:
    tokens = JoinTokens(SECRET, EC_PUBLIC)
    assert tokens.allows(token(), ROOM) and tokens.allows(token(EC_KEY, "ES256"), ROOM)


def test_the_public_key_may_be_a_file(tmp_path: Path) -> None:
    path = tmp_path / "join.pub"
    path.write_text(RSA_PUBLIC)
    assert JoinTokens("", str(path)).allows(token(RSA_KEY, "RS256"), ROOM)


@pytest.mark.parametrize("value", ["/no/such/file.pem", "-----BEGIN PUBLIC KEY-----\nxx\n"])
def test_a_broken_public_key_is_refused_at_start(value: str) -> None:
    with pytest.raises(PublicKeyError, match="SWITCHBOARD_JOIN_PUBLIC_KEY"):
        JoinTokens("", value)
