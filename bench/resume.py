"""Resume latency (Switchboard only): a resumable peer's socket is cut, and a new one
resumes it while frames wait for it.

Each of `pairs` pairs (A resumable, B plain, one room, A and B on the one gateway) runs
`rounds` rounds: A's TCP connection is reset (no close handshake), B sends `backlog`
messages to A at once, and A opens a new socket and resumes with the last frame_seq it
got. Timed from the cut: until the resumed `joined_room`, and until every message of the
backlog arrived (exactly once, in order: anything else is counted as lost). Pairs run
concurrently; runs in the benchmark's own process with the `websockets` client (the
handshakes dominate, not per-frame work).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

_TIMEOUT_S = 10.0


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), _TIMEOUT_S))
    return frame


async def _until(ws: ClientConnection, event: str) -> dict[str, Any]:
    while (frame := await _recv(ws))["event"] != event:
        pass
    return frame


async def _pair(url: str, room: str, rounds: int, backlog: int,
                to_joined: list[float], to_backlog: list[float], problems: list[str]) -> None:
    a = await websockets.connect(url)
    b = await websockets.connect(url)
    try:
        await a.send(json.dumps({"event": "join_room", "room_id": room, "resumable": True}))
        joined = await _until(a, "joined_room")
        own, token = joined["own_id"], joined["resume_token"]
        await b.send(json.dumps({"event": "join_room", "room_id": room}))
        await _until(b, "joined_room")
        last_seq = (await _until(a, "new_peer"))["frame_seq"]
        for round_ in range(rounds):
            a.transport.abort()  # the network goes
            cut = time.perf_counter()
            for n in range(backlog):
                await b.send(json.dumps({"event": "send_to_peer", "peer_id": own,
                                         "data": {"event": "message", "r": round_, "n": n}}))
            a = await websockets.connect(url)
            await a.send(json.dumps({"event": "resume", "resume_token": token,
                                     "last_frame_seq": last_seq}))
            resumed = await _recv(a)
            if resumed.get("event") != "joined_room" or not resumed.get("resumed"):
                problems.append(f"resume refused: {resumed}")
                return
            to_joined.append(time.perf_counter() - cut)
            token = resumed["resume_token"]
            got: list[int] = []
            while len(got) < backlog:
                frame = await _recv(a)
                if frame.get("event") == "message" and frame.get("r") == round_:
                    if frame["frame_seq"] != last_seq + 1:
                        problems.append(f"frame_seq {frame['frame_seq']} after {last_seq}")
                    last_seq = frame["frame_seq"]
                    got.append(frame["n"])
            to_backlog.append(time.perf_counter() - cut)
            if got != list(range(backlog)):
                problems.append(f"backlog arrived as {got}")
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        await a.close()
        await b.close()


async def _run(url: str, tag: str, pairs: int, rounds: int, backlog: int) -> dict[str, Any]:
    to_joined: list[float] = []
    to_backlog: list[float] = []
    problems: list[str] = []
    await asyncio.gather(*(_pair(url, f"{tag}-{i}", rounds, backlog, to_joined, to_backlog,
                                 problems) for i in range(pairs)))

    def ms(samples: list[float], q: float) -> float | None:
        ordered = sorted(samples)
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) \
            if ordered else None

    wanted = pairs * rounds
    return {"resumes": len(to_backlog), "pairs": pairs, "backlog": backlog,
            "joined_p50_ms": ms(to_joined, 0.5), "joined_p99_ms": ms(to_joined, 0.99),
            "backlog_p50_ms": ms(to_backlog, 0.5), "backlog_p99_ms": ms(to_backlog, 0.99),
            "lost": (wanted - len(to_backlog)) * backlog, "error_count": len(problems),
            "errors": problems[:10]}


def resume_latency(port: int, tag: str, pairs: int, rounds: int, backlog: int) -> dict[str, Any]:
    """`pairs` x `rounds` resumes against the gateway on 127.0.0.1:`port`."""
    return asyncio.run(_run(f"ws://127.0.0.1:{port}/", tag, pairs, rounds, backlog))
