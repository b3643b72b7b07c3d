"""Client frames, decoded and validated once at the edge (docs/protocol.md, "Client → server").

Pure: text in, a typed command or an error text out. Everything that needs no room state
is checked here, so that a bad frame never travels to a relay.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from shared.events import Status, Topology
from shared.frames import PEER_EVENTS, ErrorText

MAX_ROOM_ID = 50
MAX_NAME = 50
USER_AGENTS = frozenset({"chrome", "firefox", "safari", "edge", "opera", "unknown"})


class _Frame(msgspec.Struct):
    """Every field any client event may carry; the others are skipped while decoding."""

    event: Any = None
    room_id: Any = None
    status: Any = msgspec.UNSET
    peer_id: Any = None
    topology: Any = None
    # Looked at only as far as needed, so that no value there can fail the frame.
    resumable: msgspec.Raw = msgspec.Raw()
    token: msgspec.Raw = msgspec.Raw()  # a join token
    resume_token: Any = None
    last_frame_seq: Any = None
    # Kept as the client's bytes so that SDP and candidates pass through untouched.
    data: msgspec.Raw = msgspec.Raw()


_frame_decoder = msgspec.json.Decoder(_Frame)
# `data`'s top level only: its values stay the client's bytes, parsed by nobody.
_data_fields_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_string_decoder = msgspec.json.Decoder(str)
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


class Ping(NamedTuple):
    pass


class InfoRequest(NamedTuple):
    pass


class JoinRoom(NamedTuple):
    room_id: str
    status: Status
    topology: Topology | None = None  # None: the room's (mesh for a new room)
    resumable: bool = False
    # A join token, as the client's JSON: read by the session when tokens are required.
    token: bytes = b""


class ResumeRequest(NamedTuple):
    """`resume` (docs/protocol.md, "Resume"): take a peer over with its resume token."""

    resume_token: str
    last_frame_seq: int


class LeaveRoom(NamedTuple):
    pass


class UpdateStatus(NamedTuple):
    status: Status


class SendToPeer(NamedTuple):
    peer_id: str
    data: bytes  # a JSON object holding a valid `event`, with no `sender_id`


Command = Ping | InfoRequest | JoinRoom | LeaveRoom | UpdateStatus | SendToPeer | ResumeRequest


class Refusal(NamedTuple):
    """A frame the server answers with an error; the socket stays open."""

    text: ErrorText
    received: str | None = None  # the event name, when known


def parse_frame(text: str | bytes, in_room: bool) -> Command | Refusal:
    """Decode one client text frame into a command, or say why it is refused.

    `in_room` is whether the socket is in a room; with it the checks run in the order
    palava-machine made them, so that a frame with two faults gets the same answer.
    """
    try:
        frame = _frame_decoder.decode(text)
    except _DECODE_ERRORS:
        # RecursionError: msgspec's answer to nesting deeper than ~1000 levels.
        return Refusal(ErrorText.INVALID_MESSAGE)
    event = frame.event
    if not isinstance(event, str):
        return Refusal(ErrorText.NO_EVENT)
    parse = _PARSERS.get(event)
    if parse is None:
        return Refusal(ErrorText.UNKNOWN_EVENT, event)
    result: Command | ErrorText = parse(frame, in_room)
    if isinstance(result, ErrorText):
        return Refusal(result, event)
    return result


def parse_status(value: object) -> Status | ErrorText:
    """Validate a status object and keep only `name` and `user_agent`."""
    if not isinstance(value, dict):
        return ErrorText.INVALID_STATUS
    name = value.get("name")
    user_agent = value.get("user_agent")
    if ("name" in value and not isinstance(name, str)) or (
        "user_agent" in value and not isinstance(user_agent, str)
    ):
        return ErrorText.INVALID_STATUS
    if name is not None:
        if not name.strip():
            return ErrorText.BLANK_NAME
        if len(name) > MAX_NAME:
            return ErrorText.NAME_TOO_LONG
        if not name.isascii():
            name = "*" * len(name)
    if user_agent is not None and user_agent not in USER_AGENTS:
        return ErrorText.UNKNOWN_USER_AGENT
    return Status(name=name, user_agent=user_agent)


def _join_room(frame: _Frame, in_room: bool) -> JoinRoom | ErrorText:
    room_id = frame.room_id
    if not isinstance(room_id, str) or not room_id:
        return ErrorText.NO_ROOM_ID
    if len(room_id) > MAX_ROOM_ID:
        return ErrorText.ROOM_ID_TOO_LONG
    if in_room:
        return ErrorText.ALREADY_JOINED
    status = parse_status({} if frame.status is msgspec.UNSET else frame.status)
    if isinstance(status, ErrorText):
        return status
    topology = parse_topology(frame.topology)
    if isinstance(topology, ErrorText):
        return topology
    # Only JSON true asks for resume; the token is looked at by the session.
    return JoinRoom(room_id, status, topology, bytes(frame.resumable) == b"true",
                    bytes(frame.token))


def _resume(frame: _Frame, in_room: bool) -> ResumeRequest | ErrorText:
    if in_room:
        return ErrorText.ALREADY_JOINED
    token, last = frame.resume_token, frame.last_frame_seq
    if not isinstance(token, str) or type(last) is not int or last < 0:
        return ErrorText.CANNOT_RESUME
    return ResumeRequest(token, last)


_TOPOLOGIES = {topology.value: topology for topology in Topology}


def parse_topology(value: object) -> Topology | None | ErrorText:
    """A join's `topology`: one of the Topology values, or absent (null counts as absent)."""
    if value is None:
        return None
    topology = _TOPOLOGIES.get(value) if isinstance(value, str) else None
    return ErrorText.WRONG_TOPOLOGY if topology is None else topology


def _update_status(frame: _Frame, in_room: bool) -> UpdateStatus | ErrorText:
    if not in_room:
        return ErrorText.NOT_IN_ROOM
    status = parse_status(None if frame.status is msgspec.UNSET else frame.status)
    if isinstance(status, ErrorText):
        return status
    return UpdateStatus(status)


def _send_to_peer(frame: _Frame, in_room: bool) -> SendToPeer | ErrorText:
    data = bytes(frame.data)
    try:
        fields = _data_fields_decoder.decode(data)
    except _DECODE_ERRORS:
        return ErrorText.RAW_DATA  # missing, or not an object
    if not in_room:
        return ErrorText.NOT_IN_ROOM
    if not isinstance(frame.peer_id, str):
        return ErrorText.UNKNOWN_PEER
    event = fields.get("event")
    try:
        allowed = event is not None and _string_decoder.decode(event) in PEER_EVENTS
    except _DECODE_ERRORS:
        allowed = False  # not a string
    if not allowed:
        return ErrorText.EVENT_NOT_ALLOWED
    if "sender_id" in fields or "frame_seq" in fields:
        # Rare: the client named a sender, or a frame number. Dropped: the relay appends
        # the real ones (a resumable receiver's frames are numbered by the relay), and a
        # key twice in one object is read differently by different JSON parsers.
        fields.pop("sender_id", None)
        fields.pop("frame_seq", None)
        data = msgspec.json.encode(fields)
    return SendToPeer(frame.peer_id, data)


_PARSERS: dict[str, Any] = {
    "ping": lambda frame, in_room: Ping(),
    "info": lambda frame, in_room: InfoRequest(),
    "join_room": _join_room,
    "leave_room": lambda frame, in_room: LeaveRoom(),
    "update_status": _update_status,
    "send_to_peer": _send_to_peer,
    "resume": _resume,
}

# The client events of the protocol, as the parser knows them.
CLIENT_EVENTS = tuple(_PARSERS)
