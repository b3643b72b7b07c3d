"""One gateway process's parts and their life: made and started before the server listens,
drained on SIGTERM, closed after it stops (gateway/app.py wires them to Sanic)."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from gateway.admin_api import AdminApi
from gateway.admin_port import serve_admin_port
from gateway.event_sink import EventSink
from gateway.heartbeat import Heartbeat
from gateway.sockets import Gateway
from gateway.subscriber import Subscriber
from redis_io.clients import PROBE_S, RedisClient, close_client, discover, get_many, redis_client
from shared import keys
from shared.close_codes import CloseCode
from shared.health_port import serve_health_port
from shared.readiness import shards_without_relay
from shared.settings import Settings

log = logging.getLogger(__name__)


class GatewayProcess:
    """Redis clients, the event sink, the pub/sub subscriber, the heartbeat, the sockets
    (Gateway), their background tasks, and the metrics port if there is one."""

    def __init__(self, settings: Settings, gateway: Gateway, redis: RedisClient,
                 heartbeat: Heartbeat) -> None:
        self.settings = settings
        self.gateway = gateway
        self.redis = redis
        self.heartbeat = heartbeat
        self.admin: AdminApi | None = None  # when SWITCHBOARD_ADMIN_KEY is set
        self._tasks: list[asyncio.Task[None]] = []
        self._metrics_port: asyncio.Server | None = None
        self._admin_port: asyncio.Server | None = None

    @classmethod
    async def start(cls, settings: Settings, gateway_id: str) -> GatewayProcess:
        """Find Redis (waiting for it if need be), make the parts and start their tasks."""
        nodes = await discover(settings.redis_url)
        redis = redis_client(nodes)
        sink = EventSink(nodes, settings.stream_maxlen, settings.redis_wait_replicas,
                         settings.gateway_linger_ms / 1000)
        gateway: Gateway | None = None

        def lost(channels: list[bytes]) -> None:
            if gateway is not None:
                gateway.subscriptions_lost(channels)

        def declared_dead() -> None:
            # Relays removed this gateway's peers from their rooms: its sockets rejoin.
            if gateway is not None:
                gateway.close_all(CloseCode.SERVICE_RESTART, "declared dead")

        heartbeat = Heartbeat(redis, gateway_id, settings.gateway_ttl_ms, declared_dead)
        subscriber = Subscriber(nodes, lost, heartbeat.register)
        gateway = Gateway(gateway_id, settings, sink, subscriber)
        process = cls(settings, gateway, redis, heartbeat)
        if settings.admin_key:
            process.admin = AdminApi(settings.admin_key, gateway_id, settings.shards, redis,
                                     sink, subscriber, gateway.metrics.registry)
            if settings.admin_port:
                # A port of its own, so that the public port need not expose the API. A
                # port that cannot be had stops the gateway: the app relies on it.
                process._admin_port = await serve_admin_port(settings.host,
                                                             settings.admin_port, process.admin)
        if settings.metrics_port:
            # A port of its own, so that the public port need not expose the metrics.
            process._metrics_port = await serve_health_port(
                settings.host, settings.metrics_port, process.readiness_problems,
                process.metrics)
        process._tasks = [
            asyncio.create_task(sink.run()),
            asyncio.create_task(subscriber.run()),
            asyncio.create_task(gateway.keep_alive()),
            asyncio.create_task(gateway.metrics.watch_loop_lag()),
            asyncio.create_task(heartbeat.run()),
        ]
        return process

    def keep(self, task: asyncio.Task[None]) -> None:
        """Hold a task of the process's (the loop holds tasks weakly)."""
        self._tasks.append(task)

    async def drain(self) -> None:
        """Warn the sockets, serve them a while, close them, and say this gateway is gone
        (once, however many signals come)."""
        if self.gateway.draining:
            return
        await self.gateway.drain()
        await self.heartbeat.stop()

    async def close(self) -> None:
        """After the server stopped: tasks, the metrics port, Redis."""
        for task in self._tasks:
            task.cancel()
        for port in (self._metrics_port, self._admin_port):
            if port is not None:
                port.close()
        if self.gateway.join_gate is not None:
            await self.gateway.join_gate.hook.close()
        await self.gateway.subscriber.close()
        await self.gateway.sink.close()
        await close_client(self.redis)

    async def metrics(self) -> tuple[bytes, str]:
        """The Prometheus exposition and its content type."""
        return generate_latest(self.gateway.metrics.registry), CONTENT_TYPE_LATEST

    async def readiness_problems(self) -> list[str]:
        """Why this gateway cannot serve rooms now; empty when it can."""
        gateway = self.gateway
        if gateway.draining:
            return ["shutting down"]
        problems = []
        if not gateway.subscriber.connected:
            problems.append("pub/sub not connected")
        try:
            holders = await get_many(self.redis, keys.all_leases(self.settings.shards),
                                     PROBE_S)
        except RedisError as exc:
            return [*problems, f"redis unreachable: {exc}"]
        return [*problems, *shards_without_relay(holders)]
