"""Shard channels (SSUBSCRIBE): each socket's channel, dispatched to its socket, over one
pub/sub connection per Redis master that serves one of them.

A socket's channel carries its shard's hash tag, so that the shard's commit script can
SPUBLISH to it and a frame costs one node of a cluster, not all of them as a plain
PUBLISH would (docs/architecture.md, rule 9). redis-py's PubSub re-subscribes silently after a
reconnect, which would hide lost frames; here a lost connection, and a channel whose slot
moved away (Redis then sends `sunsubscribe` unasked), are reported (docs/architecture.md,
rule 5) so that those sockets are closed and their clients rejoin or resume.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError, ResponseError

from redis_io.nodes import Node, RedisNodes, cluster_error
from redis_io.resp import Reply, RespConnection, pack
from shared.backoff import Backoff

log = logging.getLogger(__name__)

Sink = Callable[[bytes], None]

_SUBSCRIBE_TIMEOUT_S = 5.0
# How long a join waits for a pub/sub connection being made before it is refused
# (`service unavailable`).
_CONNECT_WAIT_S = 1.0
# Reconnecting: first retry after the minimum, doubling up to the maximum, so that a
# Redis that comes back (or a replica promoted) is used again within a second.
# A subscription sent to a node that no longer serves its slot is sent again, this often.
_ATTEMPTS = 3
# The slot whose master the gateway stays connected to even with no socket there.
_FIRST = b"{s0}"


class Subscriber:
    """Every socket's channel, on the link to the master that serves its slot.

    A channel is *live* once Redis confirmed the SSUBSCRIBE on the current connection:
    only then can nothing published to it be missed. When a connection breaks, or Redis
    unsubscribes a channel itself, those channels are reported to `on_lost` and forgotten.
    """

    def __init__(self, nodes: RedisNodes, on_lost: Callable[[list[bytes]], None],
                 on_connected: Callable[[], Awaitable[None]]) -> None:
        self.nodes = nodes
        self._links: dict[Node, _Link] = {}
        self._on_lost = on_lost
        self._on_connected = on_connected
        # Counts connections made: a change tells that everything live before was lost.
        self.generation = 0
        # Runs once every chunk of messages read from Redis has been dispatched.
        self.after_deliveries: Callable[[], None] = lambda: None
        self._where: dict[bytes, _Link] = {}

    @property
    def connected(self) -> bool:
        return any(link.connected for link in self._links.values())

    def is_live(self, channel: bytes) -> bool:
        link = self._where.get(channel)
        return link is not None and channel in link.live

    async def subscribe(self, channel: bytes, sink: Sink) -> bool:
        """Route `channel` to `sink`. True once Redis confirmed the subscription; False
        when it could not be made (Redis away, the cluster in flux): then nothing of it
        is left behind."""
        for _ in range(_ATTEMPTS):
            link = self._link(self.nodes.node_of(channel))
            self._where[channel] = link
            outcome = await link.subscribe(channel, sink)
            if outcome is True:
                return True
            if self._where.get(channel) is link:
                del self._where[channel]
            if outcome is False:
                return False
            await self.nodes.refresh()  # MOVED: the map is behind the cluster
        return False

    def unsubscribe(self, channel: bytes) -> None:
        link = self._where.pop(channel, None)
        if link is not None:
            link.unsubscribe(channel)

    def _link(self, node: Node) -> _Link:
        link = self._links.get(node)
        if link is None or link.finished:
            link = self._links[node] = _Link(self, node)
        return link

    def lost(self, link: _Link, channels: list[bytes]) -> None:
        """Channels of `link` that may have missed frames."""
        for channel in channels:
            if self._where.get(channel) is link:
                del self._where[channel]
        if channels:
            self._on_lost(channels)

    async def connected_to(self) -> None:
        self.generation += 1
        await self._on_connected()

    async def run(self) -> None:
        """Links run as tasks of their own, made when a channel needs one. This keeps
        one up from the start, so that the gateway is known alive (and Redis reachable,
        for /readyz) before its first join."""
        while True:
            link = self._link(self.nodes.node_of(_FIRST))
            link.keep = True
            await link.finished_event.wait()

    async def close(self) -> None:
        for link in list(self._links.values()):
            link.close()


class _Link:
    """The pub/sub connection to one master, made again with backoff while it is needed."""

    def __init__(self, subscriber: Subscriber, node: Node) -> None:
        self.subscriber = subscriber
        self.node = node
        self._link: RespConnection | None = None
        self.sinks: dict[bytes, Sink] = {}
        self.live: set[bytes] = set()
        # Channels whose SSUBSCRIBE awaits its answer, in the order sent: an error reply
        # (MOVED) names no channel, so the oldest unanswered one is the one refused.
        self._asked: deque[bytes] = deque()
        self._answers: dict[bytes, asyncio.Future[bool | None]] = {}
        self._unsubscribing: set[bytes] = set()
        # SSUBSCRIBE and SUNSUBSCRIBE commands for one write at the end of the loop's
        # turn: a join storm subscribes hundreds of sockets per read, and each write is
        # a system call.
        self._outgoing: list[bytes] = []
        self.connected = False
        self._connected_event = asyncio.Event()
        self.keep = False  # the first link stays even with no channel
        self.finished = False
        self.finished_event = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def subscribe(self, channel: bytes, sink: Sink) -> bool | None:
        """True once live; None if this node does not serve the channel's slot (MOVED);
        False otherwise."""
        self.sinks[channel] = sink
        if not self.connected:
            try:
                async with asyncio.timeout(_CONNECT_WAIT_S):
                    await self._connected_event.wait()
            except TimeoutError:
                self.sinks.pop(channel, None)
                return False
        answer: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._answers[channel] = answer
        try:
            self._asked.append(channel)
            self._write_soon(pack(b"SSUBSCRIBE", channel))
            async with asyncio.timeout(_SUBSCRIBE_TIMEOUT_S):
                outcome = await answer
        except TimeoutError as exc:
            log.debug("subscribe %r not confirmed: %s", channel, exc)
            outcome = False
        finally:
            self._answers.pop(channel, None)
        if outcome is not True or channel not in self.live:
            self.unsubscribe(channel)
            return None if outcome is None else False
        return True

    def unsubscribe(self, channel: bytes) -> None:
        self.sinks.pop(channel, None)
        if channel not in self.live:
            return
        self.live.discard(channel)
        if self._link is not None and self.connected:
            self._unsubscribing.add(channel)
            self._write_soon(pack(b"SUNSUBSCRIBE", channel))

    def _write_soon(self, command: bytes) -> None:
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._write_outgoing)
        self._outgoing.append(command)

    def _write_outgoing(self) -> None:
        commands, self._outgoing = self._outgoing, []
        if self._link is None or not self.connected:
            return
        try:
            self._link.write(b"".join(commands))
        except (RedisError, OSError) as exc:
            log.debug("pub/sub write failed: %s", exc)

    async def _run(self) -> None:
        """Read and dispatch; reconnect with backoff when the connection breaks, for as
        long as some channel wants this node."""
        backoff = Backoff()
        subscriber = self.subscriber
        while self.keep or self.sinks:
            try:
                self._link = await RespConnection.open(self.node.url, self._on_reply,
                                                       subscriber.after_deliveries)
                # Before any channel goes live, so that no socket joins a room before the
                # gateway is known to be alive (relays would remove its peers).
                await subscriber.connected_to()
                self.connected = True
                self._connected_event.set()
                backoff.reset()
                await self._link.wait_closed()
                log.warning("pub/sub connection to %s:%d lost", self.node.host, self.node.port)
            except (RedisError, OSError) as exc:
                log.warning("pub/sub connection to %s:%d lost: %s", self.node.host,
                            self.node.port, exc)
            finally:
                self._disconnected()
            if subscriber.nodes.cluster:
                # A master gone may have been failed over: the channels of sockets that
                # join meanwhile go to its replica once the map says so.
                await subscriber.nodes.refresh()
                if self.node not in subscriber.nodes.masters():
                    break
            await asyncio.sleep(backoff.next())
        self.finished = True
        self.finished_event.set()

    def _disconnected(self) -> None:
        self.connected = False
        self._connected_event.clear()
        if self._link is not None:
            self._link.close()
        lost = list(self.live)
        self.live.clear()
        self._asked.clear()
        self._unsubscribing.clear()
        for channel in lost:
            self.sinks.pop(channel, None)
        for answer in self._answers.values():
            if not answer.done():
                answer.set_result(False)
        self.subscriber.lost(self, lost)

    def _on_reply(self, reply: Reply) -> None:
        """A message for a channel, Redis answering a (un)subscription, or Redis
        unsubscribing a channel whose slot moved to another node."""
        if isinstance(reply, ResponseError):
            self._refused(reply)
            return
        if not isinstance(reply, list):
            if self._link is not None:
                self._link.abort(f"unexpected pub/sub reply {reply!r}")
            return
        kind = reply[0]
        if kind == b"smessage":
            sink = self.sinks.get(reply[1])
            if sink is not None:
                try:
                    sink(reply[2])
                except Exception:
                    # A bug of ours for one socket: the connection and everyone else's
                    # channels carry on (raising here would drop the pub/sub connection).
                    log.exception("delivering on %r failed", reply[1])
        elif kind == b"ssubscribe":
            channel = reply[1]
            if self._asked and self._asked[0] == channel:
                self._asked.popleft()
            answer = self._answers.get(channel)
            if channel in self.sinks:
                self.live.add(channel)
                if answer is not None and not answer.done():
                    answer.set_result(True)
            else:  # its socket closed meanwhile
                self._unsubscribing.add(channel)
                self._write_soon(pack(b"SUNSUBSCRIBE", channel))
        elif kind == b"sunsubscribe":
            channel = reply[1]
            if channel in self._unsubscribing:
                self._unsubscribing.discard(channel)
            elif channel in self.live:
                # Unasked: the slot was migrated (or this master became a replica).
                self.live.discard(channel)
                self.sinks.pop(channel, None)
                self.subscriber.lost(self, [channel])
                if self.subscriber.nodes.cluster:
                    self.subscriber.nodes.refresh_soon()

    def _refused(self, error: ResponseError) -> None:
        if not self._asked:
            log.warning("pub/sub error from %s:%d: %s", self.node.host, self.node.port, error)
            return
        channel = self._asked.popleft()
        answer = self._answers.get(channel)
        if answer is not None and not answer.done():
            answer.set_result(None if cluster_error(error) == "MOVED" else False)
        if cluster_error(error) != "MOVED":
            log.warning("subscribing %r refused: %s", channel, error)

    def close(self) -> None:
        self.keep = False
        self.sinks.clear()
        self._task.cancel()
        if self._link is not None:
            self._link.close()
