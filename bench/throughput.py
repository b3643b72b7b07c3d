"""Rough relay throughput: messages/s between client pairs through one gateway and one relay.

    .venv/bin/python -m bench.throughput [--pairs 1] [--seconds 10] [--window 32]

Starts its own redis-server, gateway and relay (the test harness's launcher), lets each
pair exchange ~300-byte ICE-candidate-like messages in both directions with at most
`window` unanswered per direction, and prints messages delivered per second. Every
message sent must arrive, in order, or the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

import uvloop
import websockets

from tests.processes import start_cluster, start_redis

CANDIDATE = ("candidate:842163049 1 udp 1677729535 192.0.2.17 49203 typ srflx raddr 10.0.0.5 "
             "rport 49203 generation 0 ufrag Xy7b network-cost 999 ") * 2


async def _join(url: str, room: str) -> tuple[websockets.ClientConnection, str]:
    ws = await websockets.connect(url, max_size=None)
    await ws.send(json.dumps({"event": "join_room", "room_id": room}))
    joined = json.loads(await ws.recv())
    return ws, joined["own_id"]


async def _direction(src: websockets.ClientConnection, dst: websockets.ClientConnection,
                     dst_id: str, stop_at: float, window: int) -> int:
    """Send from src to dst until stop_at with `window` in flight; return messages received."""
    credit = asyncio.Semaphore(window)
    sent = 0
    done = False

    async def send() -> None:
        nonlocal sent, done
        while time.monotonic() < stop_at:
            await credit.acquire()
            frame = {"event": "send_to_peer", "peer_id": dst_id,
                     "data": {"event": "ice_candidate", "seq": sent, "candidate": CANDIDATE[:220]}}
            await src.send(json.dumps(frame))
            sent += 1
        done = True

    sender = asyncio.create_task(send())
    received = 0
    while not (done and received == sent):
        frame = json.loads(await asyncio.wait_for(dst.recv(), 10))
        if frame.get("event") != "ice_candidate":
            continue
        if frame["seq"] != received:
            raise SystemExit(f"out of order or lost: got {frame}, expected {received}")
        received += 1
        credit.release()
    await sender
    return received


async def _pair(url: str, room: str, seconds: float, window: int) -> int:
    (a, a_id), (b, b_id) = await _join(url, room), await _join(url, room)
    await a.recv()  # new_peer
    stop_at = time.monotonic() + seconds
    counts = await asyncio.gather(_direction(a, b, b_id, stop_at, window),
                                  _direction(b, a, a_id, stop_at, window))
    await a.close()
    await b.close()
    return sum(counts)


async def run(pairs: int, seconds: float, window: int) -> float:
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    redis = start_redis(workdir)
    # A closed loop sends far faster than a browser's 50 frames/s: lift the per-socket limit.
    cluster = start_cluster(redis, gateways=1, relays=1, LOG_LEVEL="warning",
                            SWITCHBOARD_FRAME_RATE="1000000", SWITCHBOARD_FRAME_BURST="1000000")
    try:
        started = time.monotonic()
        totals = await asyncio.gather(
            *(_pair(cluster.url(0), f"bench-{i}", seconds, window) for i in range(pairs)))
        elapsed = time.monotonic() - started
    finally:
        cluster.stop()
        redis.process.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rate = sum(totals) / elapsed
    print(f"pairs={pairs} window={window} seconds={elapsed:.1f} "
          f"delivered={sum(totals)} lost=0 rate={rate:,.0f} msg/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--window", type=int, default=32)
    args = parser.parse_args()
    uvloop.run(run(args.pairs, args.seconds, args.window))


if __name__ == "__main__":
    main()
