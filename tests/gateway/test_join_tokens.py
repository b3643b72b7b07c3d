"""Join tokens (docs/protocol.md, "Join tokens"): every bad token is refused, both algorithms."""

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

from gateway.join_tokens import Identity, JoinTokens, PublicKeyError

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


@pytest.mark.parametrize("claims", [
    {}, {"nbf": +20},  # not valid for 20 s yet: within the 30 s leeway
    {"exp": -20},  # expired 20 s ago, but within the leeway
    {"iat": 0, "sub": "user-7"},  # other claims are fine
])
def test_a_good_hs256_token_lets_in_its_room_only(claims: dict[str, Any]) -> None:
    # Minted here, not at collection: times are relative to now.
    now = int(time.time())
    made = token(**{k: now + v if isinstance(v, int) else v for k, v in claims.items()})
    tokens = JoinTokens(SECRET, "")
    assert tokens.required and tokens.allows(made, ROOM)
    assert not tokens.allows(made, "another-room")


BAD_TOKENS: dict[str, Any] = {
    "missing": lambda now: None,
    "empty": lambda now: "",
    "not a string": lambda now: 12,
    "garbage": lambda now: "not.a.jwt",
    "wrong secret": lambda now: token(key="another-secret-of-32-bytes-or-more!"),
    "other room": lambda now: token(room="another-room"),
    "no room claim": lambda now: token(room=None),
    "no expiry": lambda now: token(exp=None),
    "expired": lambda now: token(exp=now - 60),
    "not yet valid": lambda now: token(nbf=now + 120),
    "unsigned": lambda now: jwt.encode({"room": ROOM, "exp": now + 60}, None, algorithm="none"),
    "a public-key token with no public key set": lambda now: token(RSA_KEY, "RS256"),
}


@pytest.mark.parametrize("why", BAD_TOKENS)
def test_a_bad_token_is_refused(why: str) -> None:
    made = BAD_TOKENS[why](int(time.time()))
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


# -- identities and roles (docs/protocol.md, "Identities and roles") -----------------------

@pytest.mark.parametrize("claims, expected", [
    ({}, Identity()),
    ({"sub": "user-7"}, Identity(user="user-7")),
    ({"sub": "u"}, Identity(user="u")),
    ({"sub": "x" * 128}, Identity(user="x" * 128)),
    ({"info": {}}, Identity(info=b"{}")),
    ({"info": {"name": "Ms Tee", "tags": [1, 2]}},
     Identity(info=b'{"name":"Ms Tee","tags":[1,2]}')),
    ({"info": {"pad": "x" * 1014}}, Identity(info=b'{"pad":"' + b"x" * 1014 + b'"}')),  # 1 KiB
    ({"host": True}, Identity(host=True)),
    ({"host": False}, Identity()),
    ({"sub": "t-1", "info": {"role": "teacher"}, "host": True},
     Identity("t-1", b'{"role":"teacher"}', True)),
])
def test_identity_claims_are_read(claims: dict[str, Any], expected: Identity) -> None:
    assert JoinTokens(SECRET, "").identity(token(**claims), ROOM) == expected


def test_identity_claims_are_read_from_public_key_tokens_too() -> None:
    made = token(EC_KEY, "ES256", sub="s-1", host=True)
    assert JoinTokens("", EC_PUBLIC).identity(made, ROOM) == Identity(user="s-1", host=True)


BAD_CLAIMS: dict[str, dict[str, Any]] = {
    "sub empty": {"sub": ""},
    "sub of 129 characters": {"sub": "x" * 129},
    "sub a number": {"sub": 7},
    "sub a list": {"sub": ["a"]},
    "sub null": {"sub": "null"},  # "null": JSON null (see _with_nulls)
    "info a string": {"info": "Ms Tee"},
    "info a list": {"info": [1, 2]},
    "info a number": {"info": 3},
    "info over 1 KiB": {"info": {"pad": "x" * 1015}},
    "host a string": {"host": "true"},
    "host a number": {"host": 1},
    "host null": {"host": "null"},
}


def _with_nulls(claims: dict[str, Any]) -> str:
    """A token whose claims may hold JSON null (token() leaves None out)."""
    body = {"room": ROOM, "exp": int(time.time()) + 60,
            **{k: None if v == "null" else v for k, v in claims.items()}}
    return jwt.encode(body, SECRET, algorithm="HS256")


@pytest.mark.parametrize("why", BAD_CLAIMS)
def test_a_claim_of_the_wrong_type_or_size_refuses_the_token(why: str) -> None:
    tokens = JoinTokens(SECRET, "")
    made = _with_nulls(BAD_CLAIMS[why])
    assert tokens.identity(made, ROOM) is None, why
    assert not tokens.allows(made, ROOM)
