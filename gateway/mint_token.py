"""`switchboard-token --room R [--ttl S] [--sub U] [--info JSON] [--host] [--room-ends-at T]`:
print a join token (docs/protocol.md, "Join tokens", "Identities and roles", "Deadlines").

For operators and tests: signed with SWITCHBOARD_JOIN_SECRET (HS256), or with a PEM
private key (`--private-key`, RS256 or ES256 by the key's kind) for services that check
SWITCHBOARD_JOIN_PUBLIC_KEY. An app server mints the same in a few lines (README).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from shared.settings import ENV_NAMES, Settings, SettingsError


def mint_token(room: str, ttl_s: int, key: str | bytes, algorithm: str,
               now_s: float | None = None, **identity: Any) -> str:
    """A token for `room`, valid for `ttl_s` seconds from `now_s` (default: now), with the
    identity claims given (`sub`, `info`, `host`, `room_ends_at`; None leaves one out)."""
    now = int(time.time() if now_s is None else now_s)
    claims = {"room": room, "iat": now, "exp": now + ttl_s,
              **{name: value for name, value in identity.items() if value is not None}}
    return jwt.encode(claims, key, algorithm=algorithm)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("not a JSON object")
    return value


def _unix_time(text: str) -> int:
    """Unix seconds, or `+N`: N seconds from now."""
    try:
        value = int(text[1:]) + int(time.time()) if text.startswith("+") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not unix seconds nor +SECONDS") from None
    if value <= time.time():
        raise argparse.ArgumentTypeError("in the past")
    return value


def _private_key(path: str) -> tuple[bytes, str]:
    pem = Path(path).read_bytes()
    key = load_pem_private_key(pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        return pem, "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return pem, "ES256"
    raise ValueError("the key is neither RSA nor EC")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchboard-token", description=__doc__.split("\n")[0])
    parser.add_argument("--room", required=True, help="the room_id the token lets in")
    parser.add_argument("--ttl", type=int, default=3600,
                        help="seconds until it expires (default 3600)")
    parser.add_argument("--private-key", metavar="PEM_FILE",
                        help="sign RS256/ES256 with this key instead of the secret")
    parser.add_argument("--sub", help="the app's user id, shown to others as `user`")
    parser.add_argument("--info", type=_json_object, metavar="JSON",
                        help="a JSON object of public data, shown to others as `info`")
    parser.add_argument("--host", action="store_true", default=None,
                        help="grant the host role")
    parser.add_argument("--room-ends-at", type=_unix_time, metavar="UNIX|+SECONDS",
                        help="when a room this token's join starts ends (unix seconds, or "
                             "+N for N seconds from now)")
    args = parser.parse_args(argv)
    if args.ttl < 1:
        parser.error("--ttl must be at least 1")
    identity = {"sub": args.sub, "info": args.info, "host": args.host,
                "room_ends_at": args.room_ends_at}
    try:
        if args.private_key:
            key, algorithm = _private_key(args.private_key)
            token = mint_token(args.room, args.ttl, key, algorithm, **identity)
        else:
            secret = Settings.from_env().join_secret
            if not secret:
                parser.error(f"set {ENV_NAMES['join_secret']}, or pass --private-key")
            token = mint_token(args.room, args.ttl, secret, "HS256", **identity)
    except (OSError, ValueError, SettingsError) as exc:
        print(f"switchboard-token: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
