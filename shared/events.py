"""Structs that cross Redis, encoded as msgpack.

Rolling deploys mix versions: a struct only ever gains fields with defaults, no field is
retyped, and decoders ignore fields they do not know (msgspec's default).
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Topology(StrEnum):
    """Who sees whom in a room (docs/protocol.md, "Star rooms")."""

    MESH = "mesh"  # everyone sees everyone: plain palava
    STAR = "star"  # the host sees everyone, every other member sees only the host


class Status(msgspec.Struct, frozen=True, omit_defaults=True):
    """A peer's validated status: the only two keys palava keeps."""

    name: str | None = None
    user_agent: str | None = None

    def merged(self, update: Status) -> Status:
        """This status with the keys `update` sets replaced (an empty update keeps all)."""
        return Status(
            name=self.name if update.name is None else update.name,
            user_agent=self.user_agent if update.user_agent is None else update.user_agent,
        )


EMPTY_STATUS = Status()


class ShardEntry(msgspec.Struct, frozen=True, tag_field="t"):
    """What a room's shard stream carries: one of AnyEvent, told apart by its tag `t`."""


class Event(ShardEntry, frozen=True):
    """Something a socket asked of its room; XADDed by a gateway to the room's shard."""

    conn: str  # the sender's peer id
    room: str  # digest of the room name, never the name


class Join(Event, tag="join", frozen=True, omit_defaults=True):
    gateway: str
    seq: int  # the socket's join counter, echoed in JoinRefused
    status: Status = EMPTY_STATUS
    # The topology the client named; None takes the room's (mesh for a new room).
    topology: Topology | None = None
    # A resumable join (docs/protocol.md, "Resume"): the digest of the resume token the
    # gateway handed the client. The token itself never crosses Redis.
    token_digest: str = ""
    # The channel of the socket, when it is not the peer id (a socket that resumed a
    # peer, then left and joins again: it keeps that peer id).
    socket: str = ""
    # From the join token's claims (docs/protocol.md, "Identities and roles"): the app's
    # user id ("": none), its public info as JSON text (b"": none), the host grant.
    user: str = ""
    info: bytes = b""
    host: bool = False
    # Room-level facts a join brings when it starts the room (docs/protocol.md,
    # "Deadlines", "Admin API"): when the room ends (ms, 0: never), and its name in
    # clear, sent only while the admin API is on (so that rooms can be listed).
    ends_at: int = 0
    name: str = ""


class LeaveReason(StrEnum):
    """Why a member left (docs/protocol.md, "Webhooks": `peer.left`'s `reason`)."""

    LEFT = "left"  # leave_room
    CLOSED = "closed"  # its socket closed, and it was not resumable
    GRACE_EXPIRED = "grace_expired"  # a resumable peer did not come back in time
    OVERFLOW = "overflow"  # more was sent to it while away than is kept
    GATEWAY_LOST = "gateway_lost"  # its gateway stopped heartbeating
    REMOVED = "removed"  # by the admin API
    ROOM_CLOSED = "room_closed"  # its room, by the admin API
    EXPIRED = "expired"  # its room's deadline passed


class Leave(Event, tag="leave", frozen=True, omit_defaults=True):
    # When set, the leave is that socket's: a member another socket resumed stays.
    socket: str = ""
    # Why (a LeaveReason: only `left`, `closed` and `gateway_lost` come as a Leave); an
    # older gateway's leaves say nothing, as leave_room's. A plain string on the wire: a
    # reason a newer version adds must not make its leave undecodable here.
    reason: str = LeaveReason.LEFT


class Detach(Event, tag="detach", frozen=True):
    """A resumable peer's socket closed without leave_room: its grace period begins."""

    socket: str  # the socket that closed (a member resumed elsewhere is not detached)


class Expire(Event, tag="expire", frozen=True):
    """A detached peer's grace period is over (sent by the relay's sweep)."""

    until: int  # the deadline it was sent for: a peer that resumed since has another


class Resume(Event, tag="resume", frozen=True):
    """A new socket takes a resumable peer over (`room` is "": found by the peer id)."""

    gateway: str
    seq: int  # the socket's join counter, echoed in JoinRefused
    socket: str  # the new socket's channel
    token_digest: str  # of the token presented
    new_token_digest: str  # of the token the gateway hands out next
    last_frame_seq: int


class UpdateStatus(Event, tag="status", frozen=True, omit_defaults=True):
    status: Status
    # The sender's channel when it is not its peer id (a socket that resumed a peer): an
    # error for a sender the relay no longer has as a member must reach that socket.
    socket: str = ""


class SendToPeer(Event, tag="send", frozen=True, omit_defaults=True):
    peer: str
    # The client's `data` object as JSON, without any `sender_id` key; the relay appends
    # the real one, so that the frame is finished without decoding it again.
    data: bytes
    socket: str = ""  # as UpdateStatus.socket


class AdminEvent(ShardEntry, frozen=True):
    """An action of the app's (docs/protocol.md, "Admin API"), applied by the room's relay
    in order with the room's other events."""

    # The channel its reply (`AdminReply`) goes to: the gateway that took the HTTP request
    # listens there. "conn" on the wire, as when it was Event's peer id field, so that
    # gateways and relays of mixed versions still understand each other.
    reply_to: str = msgspec.field(name="conn")
    room: str  # digest of the room name, never the name


class RemovePeers(AdminEvent, tag="remove", frozen=True, omit_defaults=True):
    """Remove one peer, or every peer of one user."""

    peer: str = ""
    user: str = ""


class RemoveAll(AdminEvent, tag="close", frozen=True):
    """Remove every member: the room ends."""


class ServerMessage(AdminEvent, tag="server_message", frozen=True, omit_defaults=True):
    data: bytes  # a JSON object, as the app sent it
    peer: str = ""  # "": every member


class SetDeadline(AdminEvent, tag="deadline", frozen=True):
    ends_at: int  # ms; 0 clears the deadline


class EndRoom(Event, tag="end", frozen=True):
    """A room's deadline passed (sent by the relay's sweep; `conn` is "")."""

    at: int  # the deadline it was sent for: one moved since is not due


AnyEvent = (Join | Leave | UpdateStatus | SendToPeer | Detach | Expire | Resume | RemovePeers
            | RemoveAll | ServerMessage | SetDeadline | EndRoom)

# Each event by the client event it comes from (in error frames' `received_msg` and in
# metrics); detach (a resumable peer's socket closed) and expire are the service's own.
EVENT_NAMES: dict[type[AnyEvent], str] = {
    Join: "join_room", Leave: "leave_room", UpdateStatus: "update_status",
    SendToPeer: "send_to_peer", Resume: "resume", Detach: "detach", Expire: "expire",
    RemovePeers: "admin_remove", RemoveAll: "admin_close", ServerMessage: "admin_message",
    SetDeadline: "admin_deadline", EndRoom: "deadline",
}

event_encoder = msgspec.msgpack.Encoder()
event_decoder = msgspec.msgpack.Decoder(AnyEvent)


class Member(msgspec.Struct, frozen=True, omit_defaults=True):
    """A room member as stored in Redis."""

    status: Status
    gateway: str
    # Stream id of the join: orders members by arrival (the host is the oldest).
    joined: str
    # The room's topology, kept with each member so that a room read back from Redis
    # knows it without a key of its own (and leaves none behind). Omitted for mesh: a
    # mesh member's record is the same bytes as before star rooms existed.
    topology: Topology = Topology.MESH
    # Resume (docs/protocol.md): the digest of the peer's current resume token ("": the peer
    # joined without resumable), the channel of its socket when it is not the peer id,
    # and while no socket is attached, until when (ms, Redis time) and how many frames
    # it had been sent then.
    token: str = ""
    socket: str = ""
    detached_until: int = 0
    detached_seq: int = 0
    # The join's identity (see Join), kept for as long as the peer is a member.
    user: str = ""
    info: bytes = b""
    host: bool = False
    # The room's deadline and name (see Join), kept with each member as `topology` is.
    ends_at: int = 0
    room_name: str = ""
    # The token the last resume spent (its digest), accepted once more while the socket
    # that spent it is gone and `token` unused (docs/protocol.md, "Resume": the answer to
    # that resume may have been lost with its gateway).
    spent: str = ""

    @property
    def resumable(self) -> bool:
        return bool(self.token)


member_decoder = msgspec.msgpack.Decoder(Member)


class Control(msgspec.Struct, frozen=True, tag_field="t"):
    """A message for the gateway itself, published on a socket's channel.

    Frames for the client are JSON objects and start with ``{``; a control message is a
    msgpack map and never does, so the gateway tells them apart by the first byte.
    """


class JoinRefused(Control, tag="join_refused", frozen=True):
    """The join (or resume) numbered `seq` was refused: the socket is in no room."""

    seq: int


class Resumed(Control, tag="resumed", frozen=True):
    """The resume numbered `seq` succeeded: the socket is that peer now, in `room`."""

    seq: int
    conn: str
    room: str


class TakenOver(Control, tag="taken_over", frozen=True):
    """Another socket resumed this socket's peer: close this one (4001), no leave."""


class ReplayBroken(Control, tag="replay_broken", frozen=True):
    """Redis had fewer kept frames than the relay counted (never expected): the resumed
    socket cannot be given what it lacks, so its peer leaves rather than miss frames."""


class Evicted(Control, tag="evicted", frozen=True):
    """The app removed this socket's peer from `room` (its `removed` frame came just
    before): close the socket (4003), no leave. A socket that left that room meanwhile
    stays."""

    conn: str
    room: str


class AdminReply(Control, tag="admin_reply", frozen=True):
    """The outcome of an admin action: an HTTP status and its JSON body."""

    status: int
    body: bytes


AnyControl = JoinRefused | Resumed | TakenOver | ReplayBroken | Evicted | AdminReply

control_decoder = msgspec.msgpack.Decoder(AnyControl)
