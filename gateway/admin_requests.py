"""What the admin API accepts (docs/protocol.md, "Admin API"): the bearer key, and each
action's body turned into the event the room's relay applies, or a clear error text.

Pure: no Sanic, no Redis. gateway/admin_api.py serves it.
"""

from __future__ import annotations

import math
from hmac import compare_digest
from typing import Annotated, Any, NamedTuple
from urllib.parse import unquote_to_bytes

import msgspec

from shared.events import RemoveAll, RemovePeers, ServerMessage, SetDeadline

# An admin body is small; a server message is a room frame, bounded as a client's are.
MAX_BODY_BYTES = 64 * 1024
# A deadline past this (year 9999) is as good as none, and stays an int64 in ms.
MAX_ENDS_AT_S = 253_402_300_799

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class BadRequest(ValueError):
    """A body or field that is not as the API says: answered 400 with this text."""


class _Remove(msgspec.Struct, forbid_unknown_fields=True):
    peer_id: Id | msgspec.UnsetType = msgspec.UNSET
    user: Id | msgspec.UnsetType = msgspec.UNSET


class _Message(msgspec.Struct, forbid_unknown_fields=True):
    data: dict[str, Any]
    peer_id: Id | msgspec.UnsetType = msgspec.UNSET


class _Deadline(msgspec.Struct, forbid_unknown_fields=True):
    ends_at: float | None  # unix seconds; ints are taken too


def authorized(header: str | None, key: str) -> bool:
    """Whether an Authorization header carries the admin key (constant time)."""
    if not header or not header.startswith("Bearer "):
        return False
    return compare_digest(header[len("Bearer "):].encode(), key.encode())


def _parse(body: bytes, kind: type[msgspec.Struct], shape: str) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"body larger than {MAX_BODY_BYTES} bytes")
    if not body.strip():
        raise BadRequest(f"empty body; expected {shape}")
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"expected {shape}: {exc}") from None
    except msgspec.DecodeError:
        raise BadRequest(f"body is not JSON; expected {shape}") from None


def remove_event(reply: str, digest: str, body: bytes) -> RemovePeers:
    """POST .../remove: `{"peer_id": ID}` or `{"user": U}`."""
    shape = 'a JSON object {"peer_id": ID} or {"user": USER}'
    parsed: _Remove = _parse(body, _Remove, shape)
    peer = "" if parsed.peer_id is msgspec.UNSET else parsed.peer_id
    user = "" if parsed.user is msgspec.UNSET else parsed.user
    if bool(peer) == bool(user):
        raise BadRequest(f"give exactly one of peer_id and user: {shape}")
    return RemovePeers(reply_to=reply, room=digest, peer=peer, user=user)


def close_event(reply: str, digest: str, body: bytes) -> RemoveAll:
    """POST .../close: no body (or an empty JSON object)."""
    if body.strip() not in (b"", b"{}"):
        raise BadRequest("close takes no body")
    return RemoveAll(reply_to=reply, room=digest)


def message_event(reply: str, digest: str, body: bytes) -> ServerMessage:
    """POST .../message: `{"data": {...}}`, optionally `"peer_id"`."""
    parsed: _Message = _parse(body, _Message,
                              'a JSON object {"data": {...}} with an optional "peer_id"')
    peer = "" if parsed.peer_id is msgspec.UNSET else parsed.peer_id
    return ServerMessage(reply_to=reply, room=digest, data=msgspec.json.encode(parsed.data),
                         peer=peer)


def deadline_event(reply: str, digest: str, body: bytes) -> SetDeadline:
    """PUT .../deadline: `{"ends_at": unix seconds or null}` (null clears it)."""
    shape = 'a JSON object {"ends_at": UNIX_SECONDS or null}'
    parsed: _Deadline = _parse(body, _Deadline, shape)
    ends_at = parsed.ends_at
    if ends_at is None:
        return SetDeadline(reply_to=reply, room=digest, ends_at=0)
    if not math.isfinite(ends_at) or ends_at <= 0:
        raise BadRequest(f"ends_at must be a positive unix time in seconds: {shape}")
    return SetDeadline(reply_to=reply, room=digest,
                       ends_at=max(1, int(min(ends_at, MAX_ENDS_AT_S) * 1000)))


# Each action: its method, and the event its body makes.
ACTIONS = {"remove": ("POST", remove_event), "close": ("POST", close_event),
           "message": ("POST", message_event), "deadline": ("PUT", deadline_event)}


class Route(NamedTuple):
    """A request's place in the API: its name (a metrics label), and the room it names."""

    name: str
    room: str | None = None


NOT_FOUND = Route("not_found")
WRONG_METHOD = Route("wrong_method")


def route_of(method: str, raw_path: bytes) -> Route:
    """Where a request under /admin/ goes. The room is one path segment, URL-encoded
    (so that a room name may hold "/" as %2F)."""
    parts = raw_path.split(b"?", 1)[0].rstrip(b"/").split(b"/")[2:]  # after "/admin"
    if not parts or parts[0] != b"rooms" or len(parts) > 3:
        return NOT_FOUND
    if len(parts) == 1:
        return Route("list_rooms") if method == "GET" else WRONG_METHOD
    try:
        room = unquote_to_bytes(parts[1]).decode()
    except UnicodeDecodeError:
        return NOT_FOUND
    if not room:
        return NOT_FOUND
    if len(parts) == 2:
        return Route("get_room", room) if method == "GET" else WRONG_METHOD
    action = parts[2].decode("latin-1")
    if action not in ACTIONS:
        return NOT_FOUND
    return Route(action, room) if method == ACTIONS[action][0] else WRONG_METHOD

