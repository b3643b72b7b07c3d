"""A server frame as bytes, where decoding and encoding it again would cost more than the
work at hand: the relay encodes each frame's JSON once (docs/architecture.md, "The hot
path"), and what is added to it later, or read from it, is done on its bytes."""

from __future__ import annotations

import msgspec


def event_prefix(event: str) -> bytes:
    """What every frame of `event` starts with: the relay and the gateway encode `event`
    first, without spaces (shared/frames.py)."""
    return b'{"event":"' + event.encode() + b'"'


def with_fields(frame: bytes, fields: dict[str, object]) -> bytes:
    """`frame` (a JSON object) with `fields` added at its end."""
    if not fields:
        return frame
    return b"".join((frame[:-1], b",", msgspec.json.encode(fields)[1:]))


def with_int(frame: bytes, name: str, value: int) -> bytes:
    """`frame` with one integer field added at its end (on the relay's hot path: no
    encoder)."""
    return b"".join((frame[:-1], b',"', name.encode(), b'":', str(value).encode(), b"}"))
