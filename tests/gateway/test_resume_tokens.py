"""Resume tokens: 128 random bits, routed by shard, compared by digest."""

from __future__ import annotations

import base64

import pytest

from gateway.resume_tokens import TokenTarget, new_token, token_digest, token_target

PEER = "0f8e3c4a-7d2b-4c1e-9a5f-1b2c3d4e5f60"


def test_a_token_names_its_shard_and_peer_and_carries_128_random_bits() -> None:
    token = new_token(17, PEER)
    assert token_target(token, shards=64) == TokenTarget(17, PEER)
    secret = token.rsplit(".", 1)[1]
    assert len(base64.urlsafe_b64decode(secret + "==")) == 16
    assert new_token(17, PEER) != token


def test_only_the_digest_is_stored() -> None:
    token = new_token(3, PEER)
    digest = token_digest(token)
    assert len(digest) == 64 and token not in digest and digest == token_digest(token)


@pytest.mark.parametrize("token", [
    "", "garbage", f"64.{PEER}.AAAAAAAAAAAAAAAAAAAAAA",  # no such shard (of 64)
    f"1.{PEER}.short", "1.not-a-peer.AAAAAAAAAAAAAAAAAAAAAA", f"x.{PEER}.AAAAAAAAAAAAAAAAAAAAAA",
    f"1.{PEER}.AAAAAAAAAAAAAAAAAAAAAA.extra",
])
def test_malformed_tokens_name_nobody(token: str) -> None:
    assert token_target(token, shards=64) is None
