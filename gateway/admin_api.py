"""The admin API (docs/protocol.md, "Admin API"): what the app sees of its rooms, and
what it does to them.

Reads come from what the relays committed to Redis; every action is one more event on
the room's shard stream, applied by the relay that holds the shard in order with the
room's joins and leaves (docs/architecture.md, rule 10). The gateway that took the
request listens on a channel of its own in the shard's slot, named in the event, and
answers with the relay's reply once it is applied. So any gateway gives the same answer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import msgspec
from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.exceptions import RedisError

from gateway.admin_requests import (
    ACTIONS,
    NOT_FOUND,
    WRONG_METHOD,
    BadRequest,
    Route,
    authorized,
    route_of,
)
from gateway.event_sink import EventSink
from gateway.subscriber import Subscriber
from redis_io.clients import LOAD_S, PROBE_S, RedisClient, bounded
from shared import keys
from shared.admin_replies import NO_MEMBERS, error_body, room_body, room_of, rooms_body
from shared.events import AdminReply, event_encoder, member_decoder
from shared.room import Members

log = logging.getLogger(__name__)

Answer = tuple[int, bytes]

# How long an action may take to be applied before the request gives up (504).
ACTION_TIMEOUT_S = 5.0
UNAUTHORIZED = (401, error_body("missing or wrong bearer key"))
_reply_decoder = msgspec.msgpack.Decoder(AdminReply)


class AdminApi:
    """Answers requests under /admin/ (gateway/app.py routes them here)."""

    def __init__(self, key: str, gateway_id: str, shards: int, redis: RedisClient,
                 sink: EventSink, subscriber: Subscriber, registry: CollectorRegistry) -> None:
        self.key = key
        self.gateway_id = gateway_id
        self.shards = shards
        self.redis = redis
        self.sink = sink
        self.subscriber = subscriber
        self._replies = itertools.count(1)
        # Labels stay bounded: a route's name, never its room.
        self.requests = Counter("switchboard_admin_requests", "Admin API requests answered, "
                                "by route and HTTP status.", ["route", "status"],
                                registry=registry)
        self.latency = Histogram("switchboard_admin_request_seconds", "How long admin API "
                                 "requests took to answer, by route.", ["route"],
                                 registry=registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5, 1, 2.5, 5, 10))

    async def answer(self, method: str, raw_path: bytes, authorization: str | None,
                     body: bytes) -> Answer:
        """A request's status and JSON body. Never raises for anything a request holds."""
        started = time.perf_counter()
        route = route_of(method, raw_path)
        if not authorized(authorization, self.key):
            status, payload = UNAUTHORIZED
            route = Route("unauthorized")
        elif route is NOT_FOUND:
            status, payload = 404, error_body("not found")
        elif route is WRONG_METHOD:
            status, payload = 405, error_body("method not allowed")
        else:
            status, payload = await self._answer(route, body)
        self.requests.labels(route.name, str(status)).inc()
        self.latency.labels(route.name).observe(time.perf_counter() - started)
        return status, payload

    async def _answer(self, route: Route, body: bytes) -> Answer:
        try:
            if route.name == "list_rooms":
                return await self._list_rooms()
            assert route.room is not None
            if route.name == "get_room":
                return await self._get_room(route.room)
            return await self._act(route, body)
        except BadRequest as exc:
            return 400, error_body(str(exc))
        except RedisError as exc:
            return 503, error_body("service unavailable", reasons=[f"redis: {exc}"])

    # --- reads: what the relays committed --------------------------------------------

    async def _list_rooms(self) -> Answer:
        pipe = self.redis.pipeline(transaction=False)
        for shard in range(self.shards):
            pipe.smembers(keys.shard_rooms(shard))
        digests = await bounded(pipe.execute(), LOAD_S)
        names = [(shard, digest.decode()) for shard, found in enumerate(digests)
                 for digest in sorted(found)]
        pipe = self.redis.pipeline(transaction=False)
        for shard, digest in names:
            pipe.hgetall(keys.room_members(shard, digest))
        records = await bounded(pipe.execute(), LOAD_S) if names else []
        rooms = [room_of(_members(found)) for found in records if found]
        return 200, rooms_body(rooms)

    async def _get_room(self, name: str) -> Answer:
        digest = keys.room_digest(name)
        found: dict[bytes, bytes] = await bounded(self.redis.hgetall(  # type: ignore[arg-type]
            keys.room_members(keys.shard_of(digest, self.shards), digest)), PROBE_S)
        if not found:
            return 404, error_body(NO_MEMBERS)
        return 200, room_body(room_of(_members(found)), name)

    # --- actions: applied by the room's relay ----------------------------------------

    async def _act(self, route: Route, body: bytes) -> Answer:
        assert route.room is not None
        digest = keys.room_digest(route.room)
        shard = keys.shard_of(digest, self.shards)
        reply_id = f"adm-{self.gateway_id}-{next(self._replies)}"
        event = ACTIONS[route.name][1](reply_id, digest, body)  # BadRequest: 400
        if await bounded(self.redis.get(keys.shard_lease(shard)), PROBE_S) is None:
            return 503, error_body("service unavailable",
                                   reasons=[f"no relay holds shard {shard}"])
        channel = keys.connection_channel(shard, reply_id).encode()
        replied: asyncio.Future[AdminReply] = asyncio.get_running_loop().create_future()

        def take(payload: bytes) -> None:
            try:
                reply = _reply_decoder.decode(payload)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.warning("unexpected message on an admin reply channel: %s", exc)
                return
            if not replied.done():
                replied.set_result(reply)

        # Listening first: the relay may apply the action as soon as it is written.
        if not await self.subscriber.subscribe(channel, take):
            return 503, error_body("service unavailable", reasons=["pub/sub not connected"])
        try:
            await self.sink.send(keys.shard_stream(shard), event_encoder.encode(event))
            async with asyncio.timeout(ACTION_TIMEOUT_S):
                reply = await replied
        except TimeoutError:
            return 504, error_body(f"not applied within {ACTION_TIMEOUT_S:g} s")
        finally:
            self.subscriber.unsubscribe(channel)
        return reply.status, reply.body


def _members(found: dict[bytes, bytes]) -> Members:
    """A room's member records as HGETALL returns them."""
    return {conn.decode(): member_decoder.decode(raw) for conn, raw in found.items()}
