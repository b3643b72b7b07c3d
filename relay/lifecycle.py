"""Each room's life as webhook events (docs/protocol.md, "Webhooks"): pure, beside the room
state machine (relay/rooms.py), which calls it where a room starts, gains or loses a
member, changes host and finishes.

Its events are effects of the same batch as the change they report, so the commit that
makes the change records them (docs/architecture.md, rule 11): a relay killed at any
moment neither loses nor invents one. Each room's life is kept beside the room (`PutLife`)
so that the relay that takes a shard over numbers the next event where the last one left
off.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import msgspec

from relay.effects import DropLife, Effect, Hook, PutLife
from shared.events import Member
from shared.room import Room
from shared.webhook_events import (
    NO_INFO,
    AnyWebhookEvent,
    HostChanged,
    PeerJoined,
    PeerLeft,
    RoomFinished,
    RoomLife,
    RoomStarted,
    webhook_encoder,
)


def _life_name() -> str:
    return secrets.token_hex(8)


class Lifecycle:
    """The lives of one shard's rooms, and the events that number them. Off (no webhook
    URL), it records nothing and costs a comparison per join or leave."""

    def __init__(self, enabled: bool, new_name: Callable[[], str] = _life_name) -> None:
        self.enabled = enabled
        self.new_name = new_name
        self.lives: dict[str, RoomLife] = {}
        self.recorded = 0  # events since the relay last looked (it wakes its sender)

    def load(self, digest: str, life: RoomLife) -> None:
        self.lives[digest] = life

    def joined(self, digest: str, room: Room, conn: str, member: Member, at: int,
               out: list[Effect]) -> None:
        if not self.enabled:
            return
        life = self._life(digest, room, at, out)
        life = msgspec.structs.replace(life, peak=max(life.peak, len(room.members)),
                                       joins=life.joins + 1)
        self._record(digest, room, life, at, out, lambda head: PeerJoined(
            **head, peer_id=conn, user=member.user or None, info=_info(member),
            status=member.status, host=room.host == conn))

    def host_changed(self, digest: str, room: Room, at: int, out: list[Effect]) -> None:
        if not self.enabled:
            return
        host = room.members[room.host]
        self._record(digest, room, self._life(digest, room, at, out), at, out,
                     lambda head: HostChanged(**head, host_id=room.host,
                                              user=host.user or None))

    def left(self, digest: str, room: Room, conn: str, member: Member, reason: str,
             at: int, out: list[Effect]) -> None:
        if not self.enabled:
            return
        # It is no member any more: a life begun now counts it among the peak.
        life = self._life(digest, room, at, out, present=len(room.members) + 1)
        self._record(digest, room, life, at, out,
                     lambda head: PeerLeft(**head, peer_id=conn, user=member.user or None,
                                           reason=reason))

    def finished(self, digest: str, room: Room, at: int, out: list[Effect]) -> None:
        """The room's last member left: its life ends (a join later starts another)."""
        if self.enabled:
            life = self._life(digest, room, at, out)
            self._record(digest, room, life, at, out, lambda head: RoomFinished(
                **head, started_at=life.started, duration_s=max(at - life.started, 0) / 1000,
                peak_members=life.peak, joins=life.joins))
        if self.lives.pop(digest, None) is not None:
            out.append(DropLife(digest))

    def _life(self, digest: str, room: Room, at: int, out: list[Effect],
              present: int | None = None) -> RoomLife:
        """The room's life, begun (`room.started`) by the first event of a room without
        one: its first join, or, for a room that began while webhooks were off, whatever
        comes first, with the members it has (`present`, when not all of `room.members`)
        as its peak."""
        life = self.lives.get(digest)
        if life is not None:
            return life
        return self._begin(digest, room, at, out,
                           len(room.members) if present is None else present)

    def _begin(self, digest: str, room: Room, at: int, out: list[Effect],
               peak: int = 0) -> RoomLife:
        life = RoomLife(name=self.new_name(), seq=0, started=at, peak=peak, joins=0)
        return self._record(digest, room, life, at, out,
                            lambda head: RoomStarted(**head, topology=room.topology))

    def _record(self, digest: str, room: Room, life: RoomLife, at: int, out: list[Effect],
                make: Callable[[dict[str, Any]], AnyWebhookEvent]) -> RoomLife:
        seq = life.seq + 1
        life = self.lives[digest] = msgspec.structs.replace(life, seq=seq)
        event = make({"id": f"{life.name}-{seq}", "room": room.name, "room_seq": seq,
                      "at": at})
        out.append(Hook(digest, webhook_encoder.encode(event)))
        out.append(PutLife(digest, life))
        self.recorded += 1
        return life


def _info(member: Member) -> msgspec.Raw:
    return msgspec.Raw(member.info) if member.info else NO_INFO
