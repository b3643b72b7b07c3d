"""The room state machine: pure, no Redis, no await.

It takes one decoded event (and the stream id it came with, whose milliseconds are the
event's time) and returns what must happen: frames to publish to sockets, frames to keep
for resumable peers, member records to write. The Redis layer (`relay.store`) commits
those effects atomically with the batch's checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from hmac import compare_digest

import msgspec
from msgspec.structs import replace

from relay.effects import (
    CloseRoom,
    DropKept,
    DropMember,
    Effect,
    Keep,
    OpenRoom,
    Publish,
    PutMember,
    Replay,
)
from relay.lifecycle import Lifecycle
from shared.admin_replies import (
    NO_MEMBERS,
    deadline_body,
    delivered_body,
    error_body,
    removed_body,
    room_of,
)
from shared.events import (
    AdminEvent,
    AdminReply,
    AnyEvent,
    Detach,
    EndRoom,
    Evicted,
    Expire,
    Join,
    JoinRefused,
    Leave,
    LeaveReason,
    Member,
    RemoveAll,
    RemovePeers,
    Resume,
    Resumed,
    SendToPeer,
    ServerMessage,
    SetDeadline,
    TakenOver,
    Topology,
    UpdateStatus,
    event_encoder,
)
from shared.frame_bytes import with_int
from shared.frames import (
    ErrorText,
    HostChanged,
    JoinedRoom,
    NewPeer,
    PeerLeft,
    PeerUpdatedStatus,
    RemovalReason,
    encode_frame,
    error_frame,
    peer_message_frame,
)
from shared.frames import Removed as RemovedFrame
from shared.frames import ServerMessage as ServerMessageFrame
from shared.room import Members, Room, peer_entry
from shared.stream_ids import stream_order
from shared.webhook_events import RoomLife


@dataclass
class RoomStats:
    """What happened to a shard's rooms since it was last taken (usage statistics)."""

    created: int = 0
    closed: int = 0
    joined: int = 0
    left: int = 0
    # Of each room that closed: seconds it was open, the most members it had.
    lifetimes: list[tuple[float, int]] = field(default_factory=list)


_NO_STATS = RoomStats()

# peer.left's reason for each member of a room that the app or its deadline ended.
_LEFT_FOR_REMOVAL = {RemovalReason.REMOVED: LeaveReason.REMOVED,
                     RemovalReason.CLOSED: LeaveReason.ROOM_CLOSED,
                     RemovalReason.EXPIRED: LeaveReason.EXPIRED}


def _named(room: Room, peer: str) -> list[str]:
    """The peer an admin action names, if it is a member (else nobody)."""
    return [peer] if peer in room.members else []


def channel_of(conn: str, member: Member) -> str:
    """The channel of the socket a member is on: its peer id, unless it was resumed."""
    return member.socket or conn


class RoomBook:
    """The rooms of one shard, in memory, and the rules that change them."""

    def __init__(self, capacity: int, star_capacity: int, keep_frames: int = 1000,
                 grace_ms: int = 15_000, webhooks: bool = False) -> None:
        self.capacity = capacity
        self.star_capacity = star_capacity
        self.keep_frames = keep_frames  # SWITCHBOARD_RESUME_BUFFER_FRAMES
        self.grace_ms = grace_ms  # SWITCHBOARD_RESUME_GRACE_S
        self.rooms: dict[str, Room] = {}
        self.room_of: dict[str, str] = {}  # member -> its room's digest (resume finds it so)
        self.frame_seqs: dict[str, int] = {}  # resumable member -> last frame_seq sent
        self._overflowed: list[str] = []  # detached members sent more than is kept
        self.stats = RoomStats()
        self.hooks = Lifecycle(webhooks)  # the rooms' lives as webhook events
        self._entry_id = "0-0"  # of the event being applied: its time is the ms part

    def load(self, digest: str, members: Members, frame_seqs: Mapping[str, int],
             life: RoomLife | None = None) -> None:
        """Install a room read back from Redis, ordering members by join."""
        room = self.rooms[digest] = room_of(members)
        if life is not None:
            self.hooks.load(digest, life)
        for conn, member in room.members.items():
            self.room_of[conn] = digest
            if member.resumable:
                self.frame_seqs[conn] = frame_seqs.get(conn, 0)

    def departures(self) -> dict[str, list[Leave | Detach]]:
        """By gateway holding this shard's members' sockets: what its death means for
        them. A resumable member is detached from the socket it is on now (its grace
        period begins; a socket that resumes it later stays), any other leaves."""
        out: dict[str, list[Leave | Detach]] = {}
        for digest, room in self.rooms.items():
            for conn, member in room.members.items():
                if member.gateway:
                    out.setdefault(member.gateway, []).append(
                        Detach(conn=conn, room=digest, socket=channel_of(conn, member))
                        if member.resumable
                        else Leave(conn=conn, room=digest, reason=LeaveReason.GATEWAY_LOST))
        return out

    def expired(self, now_ms: int) -> list[Expire]:
        """Detached members whose grace period is over by `now_ms`."""
        return [Expire(conn=conn, room=digest, until=member.detached_until)
                for digest, room in self.rooms.items()
                for conn, member in room.members.items()
                if member.detached_until and member.detached_until <= now_ms]

    def ended(self, now_ms: int) -> list[EndRoom]:
        """Rooms whose deadline passed by `now_ms`."""
        return [EndRoom(conn="", room=digest, at=room.ends_at)
                for digest, room in self.rooms.items()
                if room.ends_at and room.ends_at <= now_ms]

    def _now_ms(self) -> int:
        """The time of the event being applied: its stream id's milliseconds (Redis's
        clock, the same for every relay and every replay of the event)."""
        return stream_order(self._entry_id)[0]

    def take_stats(self) -> RoomStats:
        """The statistics gathered since the last call (once their batch is committed)."""
        stats = self.stats
        if not (stats.joined or stats.left):
            return _NO_STATS  # the common batch: messages only (rooms open and close so)
        self.stats = RoomStats()
        return stats

    def apply(self, event: AnyEvent, entry_id: str, out: list[Effect]) -> None:
        """Apply one event; append its effects to `out` in the order they must happen."""
        self._entry_id = entry_id
        if isinstance(event, SendToPeer):
            self._send_to_peer(event, out)
        elif isinstance(event, Join):
            self._join(event, entry_id, out)
        elif isinstance(event, Leave):
            self._on_leave(event, out)
        elif isinstance(event, UpdateStatus):
            self._update_status(event, out)
        elif isinstance(event, Detach):
            self._detach(event, self._now_ms(), out)
        elif isinstance(event, Expire):
            self._expire(event, out)
        elif isinstance(event, Resume):
            self._resume(event, self._now_ms(), out)
        elif isinstance(event, AdminEvent):
            self._admin(event, out)
        elif isinstance(event, EndRoom):
            room = self.rooms.get(event.room)
            if room is not None and room.ends_at == event.at:
                self._end_room(event.room, RemovalReason.EXPIRED, out)
        while self._overflowed:
            # More frames arrived for a detached peer than are kept: it can never
            # resume, so it leaves now (docs/protocol.md, "Resume").
            conn = self._overflowed.pop()
            self._leave(self.room_of.get(conn, ""), conn, LeaveReason.OVERFLOW, out)

    # --- joining and leaving ---------------------------------------------------------

    def _join(self, event: Join, entry_id: str, out: list[Effect]) -> None:
        room = self.rooms.get(event.room)
        if room is not None and room.ends_at and room.ends_at <= self._now_ms():
            # Its deadline passed and the sweep has not ended it yet: it ends now, and
            # this join starts a new room (docs/protocol.md, "Deadlines").
            self._end_room(event.room, RemovalReason.EXPIRED, out)
            room = None
        reply = event.socket or event.conn
        refusal = None if room is None else self._refusal(room, event)
        if refusal is not None:
            out.append(Publish(reply, error_frame(refusal, "join_room")))
            if refusal is not ErrorText.ALREADY_JOINED:  # then the socket stays where it is
                out.append(Publish(reply, event_encoder.encode(JoinRefused(seq=event.seq))))
            return
        if room is None:
            room = self.rooms[event.room] = Room(event.topology or Topology.MESH,
                                                 opened_ms=self._now_ms(),
                                                 ends_at=event.ends_at, name=event.name)
            self.stats.created += 1
            out.append(OpenRoom(event.room))
        member = Member(status=event.status, gateway=event.gateway, joined=entry_id,
                        topology=room.topology, token=event.token_digest,
                        socket="" if reply == event.conn else reply,
                        user=event.user, info=event.info, host=event.host,
                        ends_at=room.ends_at, room_name=room.name)
        old_host = room.host
        room.admit(event.conn, member)
        me = peer_entry(event.conn, member)
        # (A room's first join begins its life: room.started, then peer.joined.)
        self.hooks.joined(event.room, room, event.conn, member, self._now_ms(), out)
        # joined_room is the answer to the join, so never numbered: frame_seq starts
        # after it.
        out.append(Publish(reply, encode_frame(JoinedRoom(
            own_id=event.conn, peers=room.view(event.conn), host_id=room.host,
            topology=room.topology, user=me.user, info=me.info))))
        if old_host:
            took_over = room.host != old_host
            # A star room's takeover is told by host_changed alone: a new_peer would have
            # the old host (a host until host_changed) start a link to the new one.
            if not (took_over and room.topology is Topology.STAR):
                new_peer = NewPeer(peer_id=event.conn, status=event.status, user=me.user,
                                   info=me.info)
                self._to(room, room.watchers(event.conn), encode_frame(new_peer), out)
            if took_over:
                # A granted joiner took over from a host without the grant: nobody left,
                # so (after new_peer in a mesh room, which palava clients follow) every
                # other member learns the new host and its whole new view
                # (docs/protocol.md, "Host").
                self._host_changed(event.room, room, out, skip=event.conn)
        self.stats.joined += 1
        self.room_of[event.conn] = event.room
        if member.resumable:
            self.frame_seqs[event.conn] = 0
        out.append(PutMember(event.room, event.conn, member))

    def _refusal(self, room: Room, event: Join) -> ErrorText | None:
        if event.conn in room.members:
            # A gateway never sends this; answer as palava would and keep the membership.
            return ErrorText.ALREADY_JOINED
        if event.topology is not None and event.topology != room.topology:
            return ErrorText.WRONG_TOPOLOGY
        capacity = self.star_capacity if room.topology is Topology.STAR else self.capacity
        if len(room.members) >= capacity:
            return ErrorText.ROOM_FULL
        return None

    def _on_leave(self, event: Leave, out: list[Effect]) -> None:
        member = self._member(event.room, event.conn)
        if member is not None and event.socket and channel_of(event.conn, member) != event.socket:
            return  # that socket's peer was resumed by another socket, which stays
        self._leave(event.room, event.conn, event.reason, out)

    def _leave(self, digest: str, conn: str, reason: str, out: list[Effect]) -> None:
        room = self.rooms.get(digest)
        member = None if room is None else room.members.get(conn)
        if room is None or member is None:
            return  # leaving a room one is not in is no error (docs/protocol.md)
        was_host = conn == room.host
        watchers = room.watchers(conn)
        self._drop(digest, room, conn, member, reason, out)
        if not room.members:
            self._closed(digest, room, out)
            return
        self._to(room, watchers, encode_frame(PeerLeft(sender_id=conn)), out)
        if was_host:
            self._host_changed(digest, room, out)

    def _drop(self, digest: str, room: Room, conn: str, member: Member, reason: str,
              out: list[Effect]) -> None:
        """`conn` is no longer a member: its record and kept frames go."""
        room.remove(conn)
        self.hooks.left(digest, room, conn, member, reason, self._now_ms(), out)
        del self.room_of[conn]
        self.stats.left += 1
        out.append(DropMember(digest, conn))
        if member.resumable:
            self.frame_seqs.pop(conn, None)
            out.append(DropKept(conn))

    def _closed(self, digest: str, room: Room, out: list[Effect]) -> None:
        """The room has no members left: it goes."""
        del self.rooms[digest]
        self.stats.closed += 1
        self.stats.lifetimes.append((max(self._now_ms() - room.opened_ms, 0) / 1000, room.peak))
        out.append(CloseRoom(digest))
        self.hooks.finished(digest, room, self._now_ms(), out)

    def _host_changed(self, digest: str, room: Room, out: list[Effect], skip: str = "") -> None:
        """After the host changed: every member (but `skip`, the joiner that took over)
        learns the new host and its own new view."""
        host = room.host
        self.hooks.host_changed(digest, room, self._now_ms(), out)
        shared_view: bytes | None = None  # in a star room, every non-host's is the same
        for conn in room.members:
            if conn == skip:
                continue
            if room.sees_only_host(conn):
                if shared_view is None:
                    shared_view = encode_frame(HostChanged(host_id=host, peers=room.view(conn)))
                self._deliver(room, conn, shared_view, out)
            else:
                frame = HostChanged(host_id=host, peers=room.view(conn))
                self._deliver(room, conn, encode_frame(frame), out)

    # --- resume (docs/protocol.md, "Resume") -------------------------------------------------

    def _detach(self, event: Detach, now_ms: int, out: list[Effect]) -> None:
        # A socket that closed while its resume was on the way names no room.
        digest = event.room or self.room_of.get(event.conn, "")
        member = self._member(digest, event.conn)
        if (member is None or member.detached_until
                or channel_of(event.conn, member) != event.socket):
            return  # gone, detached already, or resumed by another socket meanwhile
        if not member.resumable:
            self._leave(digest, event.conn, LeaveReason.CLOSED, out)
            return
        detached = replace(member, gateway="", detached_until=now_ms + self.grace_ms,
                           detached_seq=self.frame_seqs.get(event.conn, 0))
        self.rooms[digest].members[event.conn] = detached
        out.append(PutMember(digest, event.conn, detached))

    def _expire(self, event: Expire, out: list[Effect]) -> None:
        member = self._member(event.room, event.conn)
        if member is not None and member.detached_until == event.until:
            self._leave(event.room, event.conn, LeaveReason.GRACE_EXPIRED, out)

    def _resume(self, event: Resume, now_ms: int, out: list[Effect]) -> None:
        digest = self.room_of.get(event.conn, "")
        member = self._member(digest, event.conn)
        if member is None or not member.resumable:
            self._refuse_resume(event, out)
            return
        if compare_digest(member.token, event.token_digest):
            spent = member.token  # the successor is used: the token before it is void
        elif (member.spent and member.detached_until
              and compare_digest(member.spent, event.token_digest)):
            # The token the last resume spent, presented again once the socket that spent
            # it is gone: that resume's answer may have been lost with its gateway.
            spent = ""  # once more only
        else:
            self._refuse_resume(event, out)
            return
        sent = self.frame_seqs.get(event.conn, 0)
        missing = sent - event.last_frame_seq
        if missing < 0:
            self._refuse_resume(event, out)  # it names a frame it was never sent
            return
        if missing > self.keep_frames or (member.detached_until
                                          and now_ms > member.detached_until):
            # Frames it lacks are no longer kept, or its grace period is over: it leaves
            # as usual.
            self._refuse_resume(event, out)
            self._leave(digest, event.conn, LeaveReason.OVERFLOW if missing > self.keep_frames
                        else LeaveReason.GRACE_EXPIRED, out)
            return
        room = self.rooms[digest]
        if not member.detached_until:
            # The old socket is still open: it is taken over and closed (4001).
            out.append(Publish(channel_of(event.conn, member), event_encoder.encode(TakenOver())))
        resumed = replace(member, gateway=event.gateway,
                          socket="" if event.socket == event.conn else event.socket,
                          detached_until=0, detached_seq=0, token=event.new_token_digest,
                          spent=spent)
        room.members[event.conn] = resumed
        out.append(PutMember(digest, event.conn, resumed))
        out.append(Publish(event.socket, event_encoder.encode(
            Resumed(seq=event.seq, conn=event.conn, room=digest))))
        me = peer_entry(event.conn, resumed)
        joined = JoinedRoom(own_id=event.conn, peers=room.view(event.conn), host_id=room.host,
                            topology=room.topology, resumed=True, user=me.user, info=me.info)
        out.append(Publish(event.socket, encode_frame(joined)))
        if missing:
            out.append(Replay(event.conn, event.socket, missing))

    @staticmethod
    def _refuse_resume(event: Resume, out: list[Effect]) -> None:
        out.append(Publish(event.socket, error_frame(ErrorText.CANNOT_RESUME, "resume")))
        out.append(Publish(event.socket, event_encoder.encode(JoinRefused(seq=event.seq))))

    # --- statuses and messages ------------------------------------------------------

    def _update_status(self, event: UpdateStatus, out: list[Effect]) -> None:
        room = self.rooms.get(event.room)
        member = None if room is None else room.members.get(event.conn)
        if room is None or member is None:
            out.append(Publish(event.socket or event.conn,
                               error_frame(ErrorText.NOT_IN_ROOM, "update_status")))
            return
        status = member.status.merged(event.status)
        member = replace(member, status=status)
        room.members[event.conn] = member
        out.append(PutMember(event.room, event.conn, member))
        frame = encode_frame(PeerUpdatedStatus(status=status, sender_id=event.conn))
        # The sender hears its own update too, in join order among those who see it.
        if room.sees_only_host(event.conn):
            self._to(room, [room.host, event.conn], frame, out)
        else:
            self._to(room, list(room.members), frame, out)

    def _send_to_peer(self, event: SendToPeer, out: list[Effect]) -> None:
        # The hot path (mostly ICE candidates): the common case, a plain peer of a mesh
        # room, takes no call beyond the frame's.
        room = self.rooms.get(event.room)
        sender = None if room is None else room.members.get(event.conn)
        if room is None or sender is None:
            out.append(Publish(event.socket or event.conn,
                               error_frame(ErrorText.NOT_IN_ROOM, "send_to_peer")))
            return
        target = room.members.get(event.peer)
        if target is None or (room.topology is Topology.STAR
                              and not room.may_address(event.conn, event.peer)):
            out.append(Publish(channel_of(event.conn, sender),
                               error_frame(ErrorText.UNKNOWN_PEER, "send_to_peer")))
        elif target.token:
            self._deliver(room, event.peer, peer_message_frame(event.data, event.conn), out)
        else:
            out.append(Publish(target.socket or event.peer,
                               peer_message_frame(event.data, event.conn)))

    # --- the app's actions (docs/protocol.md, "Admin API", "Removal", "Deadlines") ----

    def _admin(self, event: AdminEvent, out: list[Effect]) -> None:
        room = self.rooms.get(event.room)
        if room is None:
            self._reply(event, 404, error_body(NO_MEMBERS), out)
        elif isinstance(event, RemovePeers):
            if event.peer:
                chosen = _named(room, event.peer)
            else:  # by user; never "": that would be everyone without an identity
                chosen = [conn for conn, m in room.members.items()
                          if event.user and m.user == event.user]
            self._remove(event.room, room, chosen, out)
            self._reply(event, 200, removed_body(chosen), out)
        elif isinstance(event, RemoveAll):
            self._reply(event, 200, removed_body(
                self._end_room(event.room, RemovalReason.CLOSED, out)), out)
        elif isinstance(event, ServerMessage):
            chosen = _named(room, event.peer) if event.peer else list(room.members)
            frame = encode_frame(ServerMessageFrame(data=msgspec.Raw(event.data)))
            self._to(room, chosen, frame, out)
            self._reply(event, 200, delivered_body(chosen), out)
        elif isinstance(event, SetDeadline):
            self._set_deadline(event, room, out)

    @staticmethod
    def _reply(event: AdminEvent, status: int, body: bytes, out: list[Effect]) -> None:
        out.append(Publish(event.reply_to, event_encoder.encode(AdminReply(status=status,
                                                                       body=body))))

    def _remove(self, digest: str, room: Room, conns: list[str], out: list[Effect]) -> None:
        """Members removed by the app, together: each is told and closed, then those who
        saw them get peer_left, and every member host_changed if the host went."""
        old_host = room.host
        watchers = {conn: room.watchers(conn) for conn in conns}
        for conn in conns:
            member = room.members[conn]
            self._tell_removed(digest, conn, member, RemovalReason.REMOVED, out)
            self._drop(digest, room, conn, member, LeaveReason.REMOVED, out)
        if not room.members:
            self._closed(digest, room, out)
            return
        for conn in conns:
            stayed = [w for w in watchers[conn] if w in room.members]
            self._to(room, stayed, encode_frame(PeerLeft(sender_id=conn)), out)
        if room.host != old_host:
            self._host_changed(digest, room, out)

    def _end_room(self, digest: str, reason: RemovalReason, out: list[Effect]) -> list[str]:
        """Every member is removed at once: nobody hears of the others leaving, the room
        is gone. Returns the members removed, in join order."""
        room = self.rooms[digest]
        removed = list(room.members)
        left = _LEFT_FOR_REMOVAL[reason]
        for conn, member in list(room.members.items()):
            self._tell_removed(digest, conn, member, reason, out)
            self._drop(digest, room, conn, member, left, out)
        self._closed(digest, room, out)
        return removed

    @staticmethod
    def _tell_removed(digest: str, conn: str, member: Member, reason: RemovalReason,
                      out: list[Effect]) -> None:
        """The `removed` frame, then the word for its gateway to close the socket (4003).
        A detached peer has no socket to tell: its resume will find it gone."""
        if member.detached_until:
            return
        channel = channel_of(conn, member)
        out.append(Publish(channel, encode_frame(RemovedFrame(reason=reason))))
        out.append(Publish(channel, event_encoder.encode(Evicted(conn=conn, room=digest))))

    def _set_deadline(self, event: SetDeadline, room: Room, out: list[Effect]) -> None:
        if event.ends_at and event.ends_at <= self._now_ms():
            self._end_room(event.room, RemovalReason.EXPIRED, out)
        else:
            room.ends_at = event.ends_at
            # Each member's record carries it, so that a room read back knows it.
            for conn, member in room.members.items():
                member = room.members[conn] = replace(member, ends_at=event.ends_at)
                out.append(PutMember(event.room, conn, member))
        self._reply(event, 200, deadline_body(event.ends_at), out)

    # --- delivery ---------------------------------------------------------------------

    def _member(self, digest: str, conn: str) -> Member | None:
        room = self.rooms.get(digest)
        return None if room is None else room.members.get(conn)

    def _to(self, room: Room, conns: Iterable[str], frame: bytes, out: list[Effect]) -> None:
        for conn in conns:
            self._deliver(room, conn, frame, out)

    def _deliver(self, room: Room, conn: str, frame: bytes, out: list[Effect]) -> None:
        """`frame` (JSON, ending in `}`) to a member: as it is, or, to a resumable peer,
        numbered and kept."""
        member = room.members[conn]
        if not member.token:
            out.append(Publish(member.socket or conn, frame))
            return
        seq = self.frame_seqs.get(conn, 0) + 1
        self.frame_seqs[conn] = seq
        numbered = with_int(frame, "frame_seq", seq)
        if member.detached_until:
            out.append(Keep(conn, "", seq, numbered))
            if seq - member.detached_seq > self.keep_frames:
                self._overflowed.append(conn)
        else:
            out.append(Keep(conn, member.socket or conn, seq, numbered))
