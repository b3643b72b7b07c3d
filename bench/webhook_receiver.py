"""The app's webhook endpoint for the webhooks scenario (docs/protocol.md, "Webhooks"): a
process of its own on 127.0.0.1, as bench/hook_receiver.py is for the join hook, so that
its work shares no event loop with the load generator or the servers.

It is an HTTP/1.1 keep-alive server (asyncio streams on uvloop) that answers every POST
200 at once and records, for each event, how late it came: the time it was read here
(`time.time()`) less the event's `at` (unix ms of the state change: the millisecond of
the Redis stream entry that made it, so up to 1 ms is that rounding). It verifies the
signature of one request in `VERIFY_EVERY` (and of the first), with the `standardwebhooks`
library as an app would, and checks each room's order: within one life of a room
(`id` = `<life>-<room_seq>`), `room_seq` must go 1, 2, 3... (a repeat is a duplicate, a
jump a gap).

`GET /stats` answers the counts (by type, verified, refused, duplicates, gaps, lives
still open, connections); `GET /latencies?from=MS&to=MS` the (at, ms late) of each
event whose `at` is in that window.
"""

from __future__ import annotations

import asyncio
import sys
import time
from array import array
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import uvloop
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bench.hook_receiver import HookReceiver, serve_until_stopped, start_process

VERIFY_EVERY = 10  # one request's signature in this many is verified (and the first)
_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class _Receiver:
    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.received = 0
        self.by_type: dict[str, int] = {}
        self.verified = 0
        self.refused = 0
        self.malformed = 0
        self.duplicates = 0
        self.gaps = 0
        self.connections = 0
        self.ids: set[str] = set()
        self.lives: dict[str, int] = {}  # life -> the highest room_seq seen
        self.finished: set[str] = set()
        self.at = array("q")  # ms
        self.late = array("d")  # ms

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:  # keep-alive: the relay pools its connections
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                length = 0
                for line in lines:
                    if line[:15].lower() == "content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                now_ms = time.time() * 1000
                if request_line.startswith("GET "):
                    answer = orjson.dumps(self.get(request_line.split()[1]))
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))
                else:
                    writer.write(self.post(body, now_ms, lines))
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def post(self, body: bytes, now_ms: float, lines: list[str]) -> bytes:
        self.received += 1
        if self.received % VERIFY_EVERY == 1 or VERIFY_EVERY == 1:
            headers = {name.strip().lower(): value.strip() for name, _, value in
                       (line.partition(":") for line in lines if line)}
            try:
                self.verifier.verify(body, headers)
            except WebhookVerificationError:
                self.refused += 1
                return b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
            self.verified += 1
        try:
            event = orjson.loads(body)
            kind, event_id, seq, at = event["type"], event["id"], event["room_seq"], event["at"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.malformed += 1
            return b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
        if event_id in self.ids:
            self.duplicates += 1
            return _OK
        self.ids.add(event_id)
        self.by_type[kind] = self.by_type.get(kind, 0) + 1
        life = event_id.rpartition("-")[0]
        if seq != self.lives.get(life, 0) + 1:
            self.gaps += 1
        self.lives[life] = max(seq, self.lives.get(life, 0))
        if kind == "room.finished":
            self.finished.add(life)
        self.at.append(at)
        self.late.append(now_ms - at)
        return _OK

    def get(self, target: str) -> dict[str, Any]:
        url = urlsplit(target)
        if url.path == "/latencies":
            query = parse_qs(url.query)
            low = int(query.get("from", ["0"])[0])
            high = int(query.get("to", [str(2**62)])[0])
            return {"samples": [[at, round(late, 3)] for at, late in zip(self.at, self.late,
                                                                          strict=True)
                                if low <= at < high]}
        return {"received": self.received, "by_type": self.by_type,
                "verified": self.verified, "refused": self.refused,
                "malformed": self.malformed, "duplicates": self.duplicates,
                "gaps": self.gaps, "open_lives": len(self.lives) - len(self.finished),
                "connections": self.connections}


async def _main(secret: str) -> None:
    await serve_until_stopped(_Receiver(secret).serve)


class WebhookReceiver(HookReceiver):
    """A running webhook receiver process (bench.hook_receiver.HookReceiver's stop and
    stats, and the window's latencies)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks"

    def latencies(self, low_ms: int, high_ms: int) -> list[float]:
        """How late (ms) each event came whose `at` is in [low_ms, high_ms)."""
        answer = self.get(f"/latencies?from={low_ms}&to={high_ms}")
        return [late for _, late in answer["samples"]]


def start_webhook_receiver(secret: str) -> WebhookReceiver:
    """A receiver process on a free loopback port, verifying a sample with `secret`."""
    popen, port = start_process("bench.webhook_receiver", secret, "webhook receiver")
    return WebhookReceiver(popen, port)


if __name__ == "__main__":
    uvloop.run(_main(sys.argv[1]))
