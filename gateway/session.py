"""One socket's own state and what its frames turn into. Pure: no sockets, no Redis."""

from __future__ import annotations

from typing import NamedTuple

from gateway import client_frames as cf
from shared import keys
from shared.events import AnyEvent, Join, JoinRefused, Leave, SendToPeer, UpdateStatus
from shared.frames import INFO, PONG, error_frame


class Forward(NamedTuple):
    """An event for the relay that owns the room: XADD it to `stream`."""

    stream: str
    event: AnyEvent


class Session:
    """A peer: its id, the room it is in (as digest and shard stream), its join counter.

    The relay owns membership; the session keeps only what routing needs and what lets
    the gateway answer "already joined" and "not in any room" without asking.
    """

    __slots__ = ("conn_id", "gateway_id", "shards", "room", "stream", "join_seq")

    def __init__(self, conn_id: str, gateway_id: str, shards: int) -> None:
        self.conn_id = conn_id
        self.gateway_id = gateway_id
        self.shards = shards
        self.room: str | None = None
        self.stream = ""
        self.join_seq = 0

    def handle(self, text: str | bytes) -> bytes | Forward | None:
        """A client frame in; a reply for the client, an event for a relay, or nothing."""
        room = self.room
        command = cf.parse_frame(text, room is not None)
        # parse_frame refuses send_to_peer and update_status outside a room: `room` is set.
        if isinstance(command, cf.SendToPeer):  # the hot path first
            return self._forward(SendToPeer(conn=self.conn_id, room=room or "",
                                            peer=command.peer_id, data=command.data))
        if isinstance(command, cf.Refusal):
            return error_frame(command.text, command.received)
        if isinstance(command, cf.Ping):
            return PONG
        if isinstance(command, cf.InfoRequest):
            return INFO
        if isinstance(command, cf.JoinRoom):
            return self._join(command)
        if isinstance(command, cf.UpdateStatus):
            return self._forward(
                UpdateStatus(conn=self.conn_id, room=room or "", status=command.status))
        return self.leave()  # cf.LeaveRoom

    def _join(self, command: cf.JoinRoom) -> Forward:
        self.room = keys.room_digest(command.room_id)
        self.stream = keys.shard_stream(keys.shard_of(self.room, self.shards))
        self.join_seq += 1
        return self._forward(Join(conn=self.conn_id, room=self.room, gateway=self.gateway_id,
                                  seq=self.join_seq, status=command.status,
                                  topology=command.topology))

    def leave(self) -> Forward | None:
        """Leave the current room (also what a closing socket does); None when in none."""
        if self.room is None:
            return None
        forward = self._forward(Leave(conn=self.conn_id, room=self.room))
        self.room = None
        return forward

    def join_refused(self, refusal: JoinRefused) -> None:
        """The relay turned the join down (room full): the socket is in no room."""
        if refusal.seq == self.join_seq:
            self.room = None

    def _forward(self, event: AnyEvent) -> Forward:
        return Forward(self.stream, event)
