"""The app's join hook receiver for the join hook scenario (docs/protocol.md, "Join
hook"): a process of its own on 127.0.0.1, so that neither its work nor its waits share
an event loop with the load generator or the gateway.

It is an HTTP/1.1 keep-alive server (asyncio streams on uvloop) that verifies every
request's signature with the `standardwebhooks` library, as an app would, and answers
`{"allow": true}` at once. `GET /stats` answers how many requests it verified and how
many it refused (a bad signature, or a body that is not a join hook request), so the
scenario can check that every join was asked exactly once.

`start_receiver` runs `python -m bench.hook_receiver SECRET` and reads the port it bound
from its first line; `HookReceiver.stop` stops it by its pid.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from harness.processes import stop_popens

# The servers' SWITCHBOARD_WEBHOOK_SECRET in the scenario (base64, `whsec_` prefixed).
WEBHOOK_SECRET = "whsec_YmVuY2gtam9pbi1ob29rLXNlY3JldC0wMTIzNDU2Nzg5YWI="
_ALLOW = b'{"allow":true}'
_READY_TIMEOUT_S = 20.0


class _Receiver:
    """The server's state: the verifier and its counts."""

    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.verified = 0
        self.refused = 0
        self.connections = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:  # keep-alive: the gateway pools its connections
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                headers = {name.strip().lower(): value.strip() for name, _, value in
                           (line.partition(":") for line in lines if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, answer = self.answer(request_line, body, headers)
                writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (status, len(answer), answer))
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def answer(self, request_line: str, body: bytes,
               headers: dict[str, str]) -> tuple[int, bytes]:
        if request_line.startswith("GET /stats "):
            return 200, json.dumps({"verified": self.verified, "refused": self.refused,
                                    "connections": self.connections}).encode()
        try:
            request = self.verifier.verify(body, headers)
        except WebhookVerificationError:
            self.refused += 1
            return 401, b'{"error":"bad signature"}'
        if not isinstance(request, dict) or not request.get("room") or \
                not request.get("peer_id"):
            self.refused += 1
            return 400, b'{"error":"not a join hook request"}'
        self.verified += 1
        return 200, _ALLOW


async def _main(secret: str) -> None:
    await serve_until_stopped(_Receiver(secret).serve)


async def serve_until_stopped(serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                              Awaitable[None]]) -> None:
    """Serve connections on a free loopback port, printed first, until SIGTERM or SIGINT
    (the receivers' main, run as a process of the bench's own)."""
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await stopped.wait()
    server.close()


@dataclass
class HookReceiver:
    """A running receiver process: its pid, where the gateway is to send its requests."""

    popen: subprocess.Popen[str]
    port: int

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/join-hook"

    def stats(self) -> dict[str, Any]:
        """{"verified", "refused", "connections"} so far."""
        return self.get("/stats")

    def get(self, path: str) -> dict[str, Any]:
        """The receiver's JSON answer to GET `path`."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path)
            answer: dict[str, Any] = json.loads(connection.getresponse().read())
        finally:
            connection.close()
        return answer

    def stop(self) -> None:
        stop_popens([self.popen])
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def start_receiver(secret: str = WEBHOOK_SECRET) -> HookReceiver:
    """A receiver process on a free loopback port, verifying with `secret`."""
    popen, port = start_process("bench.hook_receiver", secret, "join hook receiver")
    return HookReceiver(popen, port)


def start_process(module: str, secret: str, what: str) -> tuple[subprocess.Popen[str], int]:
    """`python -m MODULE SECRET`, a receiver that prints `port N` once it listens: the
    process and its port. Its stdout is a pipe of ours; its stderr is ours."""
    root = Path(__file__).resolve().parent.parent
    popen = subprocess.Popen([sys.executable, "-m", module, secret],
                             cwd=root, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    assert popen.stdout is not None
    try:
        os.set_blocking(popen.stdout.fileno(), True)
        line = _first_line(popen, _READY_TIMEOUT_S)
        if not line.startswith("port "):
            raise RuntimeError(f"the {what} did not start: {line!r}")
    except BaseException:
        HookReceiver(popen, 0).stop()
        raise
    return popen, int(line.split()[1])


def _first_line(popen: subprocess.Popen[str], timeout: float) -> str:
    """The process's first line of output, or "" if it gives none within `timeout`."""
    assert popen.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(popen.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return popen.stdout.readline().strip()


if __name__ == "__main__":
    uvloop.run(_main(sys.argv[1]))
