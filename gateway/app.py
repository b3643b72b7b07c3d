"""The Sanic application: its routes, and the gateway process's life wired to the
server's (gateway/process.py). WebSocket upgrades never reach Sanic: gateway/ws_upgrade.py
takes them, and gateway/__main__.py runs the app with it."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from sanic import Request, Sanic, response

from gateway.admin_api import AdminApi
from gateway.admin_requests import MAX_BODY_BYTES
from gateway.browser_library import library_routes
from gateway.demo import demo_routes
from gateway.origins import AllowedOrigins
from gateway.process import GatewayProcess
from shared.client_address import TrustedProxies
from shared.health_port import readiness_answer
from shared.process_id import process_id
from shared.settings import Settings

log = logging.getLogger(__name__)

App = Sanic[Any, Any]


def create_app(settings: Settings, gateway_id: str | None = None) -> App:
    """A gateway app; `app.ctx.gateway` is set once the server has started."""
    app: App = Sanic("switchboard", configure_logging=False)
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = 1.0
    # No route takes a large body: the admin API's are at most this (413 past it).
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.ctx.settings = settings
    app.ctx.allowed_origins = AllowedOrigins(settings.allowed_origin_list)
    app.ctx.trusted_proxies = TrustedProxies(settings.trusted_proxies)
    # The upgrade headers a join hook is given (None: no join hook).
    app.ctx.join_hook_headers = settings.join_hook_header_list if settings.join_hook_url \
        else None
    app.before_server_start(_starter(settings, gateway_id or process_id("gateway")))
    app.after_server_start(_handle_signals)
    app.after_server_stop(_close)
    _add_routes(app, settings)
    return app


def _starter(settings: Settings, gateway_id: str) -> Callable[[App], Coroutine[Any, Any, None]]:
    async def start(app: App) -> None:
        process = await GatewayProcess.start(settings, gateway_id)
        app.ctx.process = process
        app.ctx.gateway = process.gateway  # what gateway/ws_upgrade.py hands sockets to
    return start


async def _handle_signals(app: App) -> None:
    # After start-up, where Sanic sets SIGTERM to be ignored in single-process mode.
    process: GatewayProcess = app.ctx.process
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: process.keep(
            asyncio.create_task(_drain_then_stop(app))))
    settings: Settings = app.ctx.settings
    log.info("gateway %s listening on %s:%d", process.gateway.id, settings.host,
             settings.port)


async def _drain_then_stop(app: App) -> None:
    try:
        await app.ctx.process.drain()
    finally:
        app.stop()  # whatever went wrong above, SIGTERM ends the process


async def _close(app: App) -> None:
    await app.ctx.process.close()


def _add_routes(app: App, settings: Settings) -> None:
    async def not_an_upgrade(request: Request) -> response.HTTPResponse:
        # Upgrades to these paths are taken before Sanic; anything else is told what to do.
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

    @app.get("/readyz")
    async def readyz(request: Request) -> response.HTTPResponse:
        status, body = readiness_answer(await request.app.ctx.process.readiness_problems())
        return response.json(body, status=status)

    if settings.admin_key and not settings.admin_port:
        # Else /admin/ is 404 here like any unknown path (on its own port: admin_port.py).
        async def admin(request: Request, rest: str = "") -> response.HTTPResponse:
            api: AdminApi | None = request.app.ctx.process.admin
            assert api is not None
            status, body = await api.answer(request.method, request.raw_url,
                                            request.headers.get("authorization"), request.body)
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return response.raw(body, status=status, headers=headers,
                                content_type="application/json")

        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        app.add_route(admin, "/admin", methods=methods, name="admin_root")
        app.add_route(admin, "/admin/<rest:path>", methods=methods, name="admin")

    if not settings.metrics_port:  # else on that port alone (gateway/process.py)
        @app.get("/metrics")
        async def metrics(request: Request) -> response.HTTPResponse:
            body, content_type = await request.app.ctx.process.metrics()
            return response.raw(body, content_type=content_type)
