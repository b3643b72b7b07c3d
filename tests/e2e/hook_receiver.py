"""An app's receiver of the service's signed requests, for the tests: a real HTTP server
on loopback that checks every signature (the `standardwebhooks` library, as an app would)
and answers as the test says."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = "whsec_c3dpdGNoYm9hcmQtdGVzdHMtaG9vay1zZWNyZXQ="

# What the receiver answers a request with: a status and a JSON body.
Answer = Callable[[dict[str, Any]], Awaitable[tuple[int, Any]]]


async def allow(_: dict[str, Any]) -> tuple[int, Any]:
    return 200, {"allow": True}


@dataclass
class Received:
    body: dict[str, Any]
    headers: dict[str, str]
    when: float = field(default_factory=time.time)  # unix seconds


@dataclass
class HookReceiver:
    port: int = 0
    answer: Answer = allow
    received: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    _server: asyncio.Server | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def __aenter__(self) -> HookReceiver:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def bodies(self, room: str) -> list[dict[str, Any]]:
        """The webhooks received for `room`, in the order they came."""
        return [r.body for r in self.received if r.body.get("room") == room]

    async def until(self, ready: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `ready()` holds after some request came (or fail at `timeout`)."""
        async with asyncio.timeout(timeout):
            while not ready():
                self._arrived.clear()
                await self._arrived.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        verifier = Webhook(SECRET)
        try:
            while True:  # keep-alive: the gateway pools its connections
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                try:
                    payload = verifier.verify(body, headers)
                except WebhookVerificationError:
                    self.bad_signatures += 1
                    status, answer = 401, {"error": "bad signature"}
                else:
                    self.received.append(Received(payload, headers))
                    self._arrived.set()
                    status, answer = await self.answer(payload)
                data = json.dumps(answer).encode()
                writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (status, len(data), data))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
