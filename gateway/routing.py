"""Where an event from a client goes next: the gateway's one decision about forwarding,
pure (docs/architecture.md, rule 5: nothing is lost in silence).

A join or a resume is answered on the shard channel of its room, so that channel must be
live (subscribed, confirmed by Redis) before the event goes out; what the client sends
meanwhile waits behind it, in order. Anything else needs the socket's current channel
live, since a reply could not reach it otherwise; a leave goes out regardless, so that
the peer leaves its room even while its channel is down.
"""

from __future__ import annotations

from enum import Enum


class Route(Enum):
    WAIT = "wait"  # behind a subscription being made: keep the client's order
    SUBSCRIBE_FIRST = "subscribe first"  # its replies come on a channel not live yet
    SEND = "send"  # XADD it to its shard stream
    REFUSE = "refuse"  # `service unavailable`: a reply could not reach the socket


def route(*, joining: bool, leaving: bool, waiting: bool, channel: bytes | None,
          channel_live: bool, target: bytes | None, target_live: bool) -> Route:
    """`joining`: a join or resume, whose replies come on `target` (its room's shard
    channel); `leaving`: a leave or detach; `waiting`: a subscription of this socket is
    being made; `channel`: the socket's current channel, if any."""
    if waiting:
        return Route.WAIT
    if joining and (target != channel or not target_live):
        return Route.SUBSCRIBE_FIRST
    if (channel is not None and channel_live) or leaving:
        return Route.SEND
    return Route.REFUSE
