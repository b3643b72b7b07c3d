"""The Sanic application: WebSocket routes, health endpoints, start-up and shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from redis.exceptions import RedisError
from sanic import Request, Sanic, response

from gateway.browser_library import library_routes
from gateway.demo import demo_routes
from gateway.event_sink import EventSink
from gateway.heartbeat import Heartbeat
from gateway.origins import AllowedOrigins
from gateway.sockets import Gateway
from gateway.subscriber import Subscriber
from redis_io.clients import PROBE_S, close_client, discover, get_many, redis_client
from shared import keys
from shared.close_codes import CloseCode
from shared.process_id import process_id
from shared.readiness import shards_without_relay
from shared.settings import Settings

log = logging.getLogger(__name__)

App = Sanic[Any, Any]


def create_app(settings: Settings, gateway_id: str | None = None) -> App:
    """A gateway app; `app.ctx.gateway` is set once the server has started."""
    app: App = Sanic("switchboard", configure_logging=False)
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = 1.0
    app.ctx.settings = settings
    app.ctx.allowed_origins = AllowedOrigins(settings.allowed_origin_list)

    gateway_id = gateway_id or process_id("gateway")

    @app.before_server_start
    async def start(app: App) -> None:
        topology = await discover(settings.redis_url)
        redis = redis_client(topology)
        sink = EventSink(topology, settings.stream_maxlen, settings.redis_wait_replicas,
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
        subscriber = Subscriber(topology, lost, heartbeat.register)
        gateway = Gateway(gateway_id, settings, sink, subscriber)
        app.ctx.redis = redis
        app.ctx.gateway = gateway
        app.ctx.heartbeat = heartbeat
        app.ctx.metrics_server = None
        if settings.metrics_port:
            # A port of its own (a thread of prometheus-client's), so that the public
            # port need not expose the metrics.
            app.ctx.metrics_server, _ = start_http_server(
                settings.metrics_port, addr=settings.host, registry=gateway.metrics.registry)
        app.ctx.tasks = [
            asyncio.create_task(sink.run()),
            asyncio.create_task(subscriber.run()),
            asyncio.create_task(gateway.keep_alive()),
            asyncio.create_task(gateway.metrics.watch_loop_lag()),
            asyncio.create_task(heartbeat.run()),
        ]

    @app.after_server_start
    async def handle_signals(app: App) -> None:
        # After start-up, where Sanic sets SIGTERM to be ignored in single-process mode.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: app.ctx.tasks.append(
                asyncio.create_task(stop(app))))
        log.info("gateway %s listening on %s:%d", app.ctx.gateway.id, settings.host,
                 settings.port)

    async def stop(app: App) -> None:
        gateway: Gateway = app.ctx.gateway
        if gateway.draining:
            return
        try:
            await gateway.drain()
            await app.ctx.heartbeat.stop()
        finally:
            app.stop()  # whatever went wrong above, SIGTERM ends the process

    @app.after_server_stop
    async def cleanup(app: App) -> None:
        for task in app.ctx.tasks:
            task.cancel()
        if app.ctx.metrics_server is not None:
            app.ctx.metrics_server.shutdown()
        await app.ctx.gateway.subscriber.close()
        await app.ctx.gateway.sink.close()
        await close_client(app.ctx.redis)

    async def not_an_upgrade(request: Request) -> response.HTTPResponse:
        # WebSocket upgrades to these paths never reach Sanic (gateway/ws_upgrade.py,
        # with which gateway/__main__.py runs the app); anything else is told what to do.
        return response.text("this is a WebSocket endpoint: send an upgrade request\n",
                             status=426, headers={"Upgrade": "websocket"})

    # palava clients connect to the root path; /ws is an alias (docs/protocol.md).
    app.add_route(not_an_upgrade, "/", name="ws_root")
    app.add_route(not_an_upgrade, "/ws", name="ws_alias")
    app.blueprint(demo_routes(Path(settings.palava_bundle)))
    app.blueprint(library_routes())

    @app.get("/healthz")
    async def healthz(request: Request) -> response.HTTPResponse:
        return response.json({"ok": True})

    if not settings.metrics_port:
        @app.get("/metrics")
        async def metrics(request: Request) -> response.HTTPResponse:
            body = generate_latest(request.app.ctx.gateway.metrics.registry)
            return response.raw(body, content_type=CONTENT_TYPE_LATEST)

    @app.get("/readyz")
    async def readyz(request: Request) -> response.HTTPResponse:
        problems = await readiness_problems(request.app)
        return response.json({"ready": not problems, "problems": problems},
                             status=503 if problems else 200)

    return app


async def readiness_problems(app: App) -> list[str]:
    """Why this gateway cannot serve rooms now; empty when it can."""
    gateway: Gateway = app.ctx.gateway
    settings: Settings = app.ctx.settings
    if gateway.draining:
        return ["shutting down"]
    problems = []
    if not gateway.subscriber.connected:
        problems.append("pub/sub not connected")
    try:
        holders = await get_many(app.ctx.redis, keys.all_leases(settings.shards), PROBE_S)
    except RedisError as exc:
        return [*problems, f"redis unreachable: {exc}"]
    return [*problems, *shards_without_relay(holders)]
