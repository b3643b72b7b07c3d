"""The WebSocket handshake inside Sanic, and the hand-over of the socket to WsConnection.

Sanic serves HTTP (health, readiness, the demo page) and parses the upgrade request;
websockets' sans-I/O protocol checks it and writes the 101 (or the 4xx, through Sanic).
Then the transport is given to a WsConnection and Sanic forgets it: its HttpProtocol,
Request and tasks are freed once the route handler returns, which it does as soon as the
gateway has subscribed the socket's channel.
"""

from __future__ import annotations

from collections.abc import Sequence

from sanic.exceptions import RequestCancelled, SanicException
from sanic.log import websockets_logger
from sanic.request import Request
from sanic.server.protocols.websocket_protocol import WebSocketProtocol
from websockets.protocol import State
from websockets.server import ServerProtocol

from gateway.ws_connection import WsConnection


class Handover:
    """What Sanic's WebSocket route gets in place of its own connection object. Sanic
    closes that object when the route handler returns; the socket is the gateway's by
    then, so closing here does nothing."""

    __slots__ = ("connection",)

    def __init__(self, connection: WsConnection) -> None:
        self.connection = connection

    async def close(self, code: int = 1000, reason: str = "") -> None:
        return None

    def end_connection(self, code: int = 1000, reason: str = "") -> None:
        return None


class GatewayHttpProtocol(WebSocketProtocol):
    """Sanic's HTTP protocol, handing each accepted WebSocket over to a WsConnection."""

    async def websocket_handshake(self, request: Request,
                                  subprotocols: Sequence[str] | None = None) -> Handover:
        # Sanic has parsed the request: websockets only checks it and builds the answer.
        handshake = ServerProtocol(state=State.OPEN, logger=websockets_logger)
        response = handshake.accept(self.sanic_request_to_ws_request(request))
        if response.status_code != 101:
            # Not a WebSocket handshake (or a broken one): Sanic answers with the status.
            raise SanicException(response.body.decode(errors="replace"),
                                 status_code=response.status_code)
        transport = self.transport
        if transport is None or transport.is_closing():
            raise RequestCancelled()
        transport.write(response.serialize())
        connection = WsConnection(transport, self.websocket_max_size, self.websocket_timeout)
        transport.set_protocol(connection)
        # Sanic no longer reads, writes, times out or closes this socket.
        self.connections.discard(self)
        self.transport = None
        leftover = bytes(self.recv_buffer)  # frames sent right behind the request
        self.recv_buffer.clear()
        if leftover:
            connection.data_received(leftover)
        return Handover(connection)
