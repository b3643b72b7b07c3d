"""The admin API on a port of its own (SWITCHBOARD_ADMIN_PORT), so that the public port
need not expose it. gateway/admin_api.py answers; shared/http_port.py carries."""

from __future__ import annotations

import asyncio

from gateway.admin_api import AdminApi
from gateway.admin_requests import MAX_BODY_BYTES
from shared.http_port import Request, Response, error_response, serve_http_port


async def serve_admin_port(host: str, port: int, api: AdminApi) -> asyncio.Server:
    """Serve the admin API on `port` (raises OSError when the port cannot be had)."""

    async def answer(request: Request) -> Response:
        target = request.target
        if target.split(b"?", 1)[0].rstrip(b"/") != b"/admin" and not target.startswith(
                b"/admin/"):
            return error_response(404, "not found")
        authorization = request.headers.get(b"authorization")
        status, body = await api.answer(
            request.method, target,
            None if authorization is None else authorization.decode("latin-1"), request.body)
        return Response(status, body)

    return await serve_http_port(host, port, answer, max_body=MAX_BODY_BYTES)
