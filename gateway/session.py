"""One socket's own state and what its frames turn into. Pure: no sockets, no Redis."""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from gateway import frame_parser as cf
from gateway.join_tokens import NO_IDENTITY, JoinTokens
from gateway.resume_tokens import new_token, token_digest, token_target
from shared import keys
from shared.events import (
    AnyEvent,
    Detach,
    Evicted,
    Join,
    JoinRefused,
    Leave,
    LeaveReason,
    Resume,
    Resumed,
    SendToPeer,
    UpdateStatus,
)
from shared.frames import INFO, PONG, ErrorText, error_frame

_OPEN = JoinTokens("", "")  # no join tokens required

# What a frame from a client counts as (metrics): its event, "unknown" for an event not in
# the protocol, "invalid" for a frame with none (or not JSON at all).
FRAME_EVENTS = (*cf.CLIENT_EVENTS, "unknown", "invalid")


def frame_counts() -> dict[str, int]:
    """A zeroed count per FRAME_EVENTS label."""
    return dict.fromkeys(FRAME_EVENTS, 0)


class Forward(NamedTuple):
    """An event for the relay that owns the room: XADD it to `stream`."""

    stream: str
    event: AnyEvent


class Session:
    """A peer: its id, the room it is in (as digest and shard stream), its join counter.

    The relay owns membership; the session keeps only what routing needs and what lets
    the gateway answer "already joined" and "not in any room" without asking. `socket_id`
    names the socket (its channel); `conn_id` is the peer it is, the same until it
    resumes another (docs/protocol.md, "Resume").
    """

    __slots__ = ("conn_id", "socket_id", "gateway_id", "shards", "room", "stream", "join_seq",
                 "resumable", "resuming", "resuming_conn", "token", "join_tokens", "counts",
                 "keep_names", "join_request")

    def __init__(self, socket_id: str, gateway_id: str, shards: int,
                 join_tokens: JoinTokens = _OPEN, counts: dict[str, int] | None = None,
                 keep_names: bool = False) -> None:
        self.socket_id = socket_id
        self.conn_id = socket_id
        self.gateway_id = gateway_id
        self.shards = shards
        self.room: str | None = None
        self.stream = ""
        self.join_seq = 0
        self.resumable = False  # the current membership is
        self.resuming = False  # a resume is on its way to the relay
        self.resuming_conn = ""  # the peer it would take over
        # The resume token the next joined_room hands out (in clear: only this process
        # and the client ever see it).
        self.token: str | None = None
        self.join_tokens = join_tokens
        # Frames handled, by event: the gateway's (metrics), shared by its sessions.
        self.counts = frame_counts() if counts is None else counts
        # The admin API is on: a join names its room in clear, so that rooms can be listed.
        self.keep_names = keep_names
        # The last join's room name and join token (if a string): what a join hook is told.
        self.join_request: tuple[str, str | None] = ("", None)

    def handle(self, text: str | bytes) -> bytes | Forward | None:
        """A client frame in; a reply for the client, an event for a relay, or nothing."""
        room = self.room
        command = cf.parse_frame(text, room is not None or self.resuming)
        counts = self.counts
        # parse_frame refuses send_to_peer and update_status outside a room; while a
        # resume is pending, the session does.
        if isinstance(command, cf.SendToPeer):  # the hot path first
            counts["send_to_peer"] += 1
            if room is None:
                return error_frame(ErrorText.NOT_IN_ROOM, "send_to_peer")
            return self._forward(SendToPeer(conn=self.conn_id, room=room,
                                            peer=command.peer_id, data=command.data,
                                            socket=self._own_channel()))
        if isinstance(command, cf.Refusal):
            received = command.received
            counts["unknown" if command.text is ErrorText.UNKNOWN_EVENT
                   else received if received in counts else "invalid"] += 1
            return error_frame(command.text, received)
        if isinstance(command, cf.Ping):
            counts["ping"] += 1
            return PONG
        if isinstance(command, cf.InfoRequest):
            counts["info"] += 1
            return INFO
        if isinstance(command, cf.JoinRoom):
            counts["join_room"] += 1
            return self._join(command)
        if isinstance(command, cf.UpdateStatus):
            counts["update_status"] += 1
            if room is None:
                return error_frame(ErrorText.NOT_IN_ROOM, "update_status")
            return self._forward(UpdateStatus(conn=self.conn_id, room=room,
                                              status=command.status,
                                              socket=self._own_channel()))
        if isinstance(command, cf.ResumeRequest):
            counts["resume"] += 1
            return self._resume(command)
        counts["leave_room"] += 1
        return self.leave()  # cf.LeaveRoom

    def _join(self, command: cf.JoinRoom) -> Forward | bytes:
        identity = (self.join_tokens.identity(command.token, command.room_id)
                    if self.join_tokens.required else NO_IDENTITY)
        if identity is None:
            return error_frame(ErrorText.NOT_ALLOWED, "join_room")
        self.join_request = (command.room_id, _token_text(command.token))
        self.room = keys.room_digest(command.room_id)
        shard = keys.shard_of(self.room, self.shards)
        self.stream = keys.shard_stream(shard)
        self.join_seq += 1
        self.resumable = command.resumable
        self.token = new_token(shard, self.conn_id) if command.resumable else None
        return self._forward(Join(
            conn=self.conn_id, room=self.room, gateway=self.gateway_id, seq=self.join_seq,
            status=command.status, topology=command.topology,
            token_digest=token_digest(self.token) if self.token else "",
            socket=self._own_channel(),
            user=identity.user, info=identity.info, host=identity.host,
            ends_at=identity.ends_at, name=command.room_id if self.keep_names else ""))

    def _resume(self, command: cf.ResumeRequest) -> Forward | bytes:
        target = token_target(command.resume_token, self.shards)
        if target is None:  # not a token this service hands out: no relay need look
            return error_frame(ErrorText.CANNOT_RESUME, "resume")
        self.stream = keys.shard_stream(target.shard)
        self.join_seq += 1
        self.resuming = True
        self.resuming_conn = target.conn
        self.token = new_token(target.shard, target.conn)
        return self._forward(Resume(
            conn=target.conn, room="", gateway=self.gateway_id, seq=self.join_seq,
            socket=self.socket_id, token_digest=token_digest(command.resume_token),
            new_token_digest=token_digest(self.token),
            last_frame_seq=command.last_frame_seq))

    def leave(self, reason: LeaveReason = LeaveReason.LEFT) -> Forward | None:
        """leave_room (or a socket that closed): leave the current room; None when in
        none."""
        if self.room is None:
            return None
        # A resumable member's leave names this socket: if another socket has taken the
        # peer over meanwhile, the peer stays.
        forward = self._forward(Leave(conn=self.conn_id, room=self.room,
                                      socket=self.socket_id if self.resumable else "",
                                      reason=reason))
        self._no_room()
        return forward

    def _own_channel(self) -> str:
        """The socket's id when its channel is not named by its peer id (it resumed a
        peer), else "" (nothing added to the event)."""
        return "" if self.socket_id == self.conn_id else self.socket_id

    def closed(self) -> Forward | None:
        """The socket closed: a resumable peer is detached (it may resume within its grace
        period), any other leaves."""
        if self.resuming:
            # Closed with its resume on the way: if the relay takes it, the peer must not
            # stay on a socket that is gone. (Its room is the relay's to find.)
            forward = self._forward(Detach(conn=self.resuming_conn, room="",
                                           socket=self.socket_id))
            self._no_room()
            return forward
        if self.room is None or not self.resumable:
            return self.leave(LeaveReason.CLOSED)
        forward = self._forward(Detach(conn=self.conn_id, room=self.room,
                                       socket=self.socket_id))
        self._no_room()
        return forward

    def join_refused(self, refusal: JoinRefused) -> None:
        """The relay turned the join or resume down: the socket is in no room."""
        if refusal.seq == self.join_seq:
            self._no_room()

    def resumed(self, resumed: Resumed) -> None:
        """The relay accepted the resume: this socket is that peer now, in its room."""
        if resumed.seq == self.join_seq:
            self.conn_id = resumed.conn
            self.room = resumed.room
            self.resuming = False
            self.resuming_conn = ""
            self.resumable = True

    def taken_over(self) -> None:
        """Another socket resumed this peer: this one is in no room (and is closed)."""
        self._no_room()

    def evicted(self, evicted: Evicted) -> bool:
        """The app removed a peer from a room: True (and in no room now) when that is
        this session's membership, False when it left that room meanwhile."""
        if (evicted.conn, evicted.room) != (self.conn_id, self.room):
            return False
        self._no_room()
        return True

    def _no_room(self) -> None:
        self.room = None
        self.resuming = False
        self.resuming_conn = ""
        self.resumable = False
        self.token = None

    def _forward(self, event: AnyEvent) -> Forward:
        return Forward(self.stream, event)


def _token_text(token: bytes) -> str | None:
    """A join's token as the join hook is given it: the string, when it is one."""
    if not token:
        return None
    try:
        return msgspec.json.decode(token, type=str)
    except msgspec.DecodeError:  # ValidationError is one: not a string
        return None
