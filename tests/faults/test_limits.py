"""The limits of docs/protocol.md ("Limits"), each hit for real on a cluster of its own.

Each test starts a Redis, a relay and a gateway with the limit set (small where that keeps
the test fast, the default where that is fast enough) and breaches it the way a client
on the open internet would.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import time
import uuid
from typing import Any

import pytest
import redis
import websockets

from bench.procstat import PeakRss, rss_kib
from harness.processes import Cluster, eventually
from harness.rawsocket import CLOSE, PING, PONG, TEXT, RawSocket, encode_frame
from shared.keys import room_digest, room_members, shard_of, shard_stream
from tests.faults.support import private_cluster, record, tracebacks
from tests.peers import Peer

# Frames per second no limit test means to hit (for the clients that flood on purpose).
UNLIMITED = {"SWITCHBOARD_FRAME_RATE": "1000000", "SWITCHBOARD_FRAME_BURST": "1000000",
             "SWITCHBOARD_WIRE_FRAME_RATE": "1000000", "SWITCHBOARD_WIRE_FRAME_BURST": "1000000",
             "SWITCHBOARD_WIRE_BYTE_RATE": "1e9", "SWITCHBOARD_WIRE_BYTE_BURST": "1000000000"}


def _room() -> str:
    return f"lim-{uuid.uuid4().hex[:16]}"


def _port(cluster: Cluster, index: int = 0) -> int:
    return cluster.gateways[index][1]


def _message_of_size(size: int, peer_id: str) -> str:
    """A send_to_peer frame whose UTF-8 text is exactly `size` bytes."""
    frame: dict[str, Any] = {"event": "send_to_peer", "peer_id": peer_id,
                             "data": {"event": "message", "pad": ""}}
    frame["data"]["pad"] = "x" * (size - len(json.dumps(frame)))
    text = json.dumps(frame)
    assert len(text.encode()) == size
    return text


def _ping_of_size(size: int) -> str:
    text = json.dumps({"event": "ping", "pad": ""})
    return json.dumps({"event": "ping", "pad": "x" * (size - len(text))})


# --- frame size -----------------------------------------------------------------------------

async def test_frame_over_max_frame_bytes_closes_1009_and_one_at_the_limit_passes() -> None:
    with private_cluster(gateways=1, relays=1) as cluster:
        _, small_port = cluster.start_gateway(SWITCHBOARD_MAX_FRAME_BYTES="4096")
        cluster.wait_ready(small_port)
        receiver = await Peer.connect(cluster.url(0))
        room = _room()
        await receiver.join(room)
        # The default (64 KiB) on the cluster's gateway, and 4096 set by env on the other.
        for url, limit in ((cluster.url(0), 64 * 1024), (f"ws://127.0.0.1:{small_port}/", 4096)):
            sender = await Peer.connect(url)
            await sender.join(room)
            await receiver.expect("new_peer")
            at_limit = _message_of_size(limit, receiver.id or "")
            await sender.send_raw(at_limit)
            delivered = await receiver.expect("message")
            assert delivered["pad"] == json.loads(at_limit)["data"]["pad"]
            assert delivered["sender_id"] == sender.id
            await sender.send_raw(_ping_of_size(limit + 1))
            assert await sender.closed_with() == 1009, f"limit {limit}"
            # A socket closed for its size leaves its room like any other.
            assert await receiver.expect("peer_left") == {"event": "peer_left",
                                                          "sender_id": sender.id}
        # The gateway that closed them serves new sockets as before.
        after = await Peer.connect(f"ws://127.0.0.1:{small_port}/")
        await after.send(event="ping")
        await after.expect("pong")
        await after.close()
        await receiver.close()
        assert not tracebacks(cluster)


# --- frame rate -----------------------------------------------------------------------------

async def _answers(raw: RawSocket, count: int) -> tuple[list[dict[str, Any]], int | None]:
    """Up to `count` JSON answers, stopping early at a close (returned as its code)."""
    answers: list[dict[str, Any]] = []
    while len(answers) < count:
        frame = await raw.read_message()
        if frame.opcode == CLOSE:
            return answers, raw.close_code
        answers.append(frame.json())
    return answers, None


def _tally(answers: list[dict[str, Any]]) -> tuple[int, int]:
    """(pongs, rate-limit errors); anything else fails the test."""
    pongs = limited = 0
    for answer in answers:
        if answer == {"event": "pong"}:
            pongs += 1
        else:
            assert answer == {"event": "error", "message": "rate limit exceeded",
                              "description": "rate limit exceeded"}, answer
            limited += 1
    return pongs, limited


async def _pong_once_refilled(client: RawSocket, ping: bytes, rate: float) -> bool:
    """Ping until answered with a pong; every other answer must be the rate limit's.
    (Bounded poll: a token comes back every 1/rate s.)"""
    for _ in range(50):
        client.send_raw(ping)
        reply = await client.expect_json()
        if reply == {"event": "pong"}:
            return True
        _tally([reply])
        await asyncio.sleep(1 / rate)
    return False


async def test_frame_rate_burst_gets_errors_then_refills_and_persistent_abuse_closes_1008(
) -> None:
    rate, burst = 50, 200  # docs/protocol.md's defaults, which the gateway runs with here
    with private_cluster(gateways=1, relays=1) as cluster:
        ping = encode_frame(TEXT, b'{"event":"ping"}')
        # A burst of 250 frames at once: the first 200 pass, the rest are refused.
        client = await RawSocket.connect(_port(cluster))
        started = time.monotonic()
        client.send_raw(ping * 250)
        answers, closed = await _answers(client, 250)
        elapsed = time.monotonic() - started
        assert closed is None, f"closed with {closed} after {len(answers)} answers"
        pongs, limited = _tally(answers)
        burst_pongs = pongs
        refilled = math.ceil(elapsed * rate) + 1  # tokens that can have come back meanwhile
        assert burst <= pongs <= burst + refilled, (pongs, elapsed)
        assert limited == 250 - pongs and limited >= 1
        # The socket stays open; once the bucket has refilled, a ping is answered again.
        assert await _pong_once_refilled(client, ping, rate)
        # Persistent abuse: a client that goes on sending far past the bucket is closed.
        abuser = await RawSocket.connect(_port(cluster))
        abuser.send_raw(ping * 1000)
        abuse_answers, closed = await _answers(abuser, 1000)
        pongs, limited = _tally(abuse_answers)
        assert closed == 1008, f"not closed: {pongs} pongs, {limited} errors"
        assert pongs >= burst and limited >= 50, (pongs, limited)
        # The other socket on the same gateway is untouched (its own bucket may still be
        # refilling from its burst: it is answered, with pongs once tokens are back).
        assert await _pong_once_refilled(client, ping, rate)
        # The limit is configurable: a gateway allowing bursts of 10.
        _, port = cluster.start_gateway(SWITCHBOARD_FRAME_RATE="5", SWITCHBOARD_FRAME_BURST="10")
        strict = await RawSocket.connect(port)
        started = time.monotonic()
        strict.send_raw(ping * 20)
        answers, closed = await _answers(strict, 20)
        refilled = math.ceil((time.monotonic() - started) * 5) + 1
        pongs, limited = _tally(answers)
        assert closed is None and 10 <= pongs <= 10 + refilled and limited == 20 - pongs, (
            pongs, limited)
        record("limits.frame_rate", burst_sent=250, burst_pongs=burst_pongs,
               burst_elapsed_s=round(elapsed, 3), abuse_sent=1000,
               abuse_answers_before_1008=len(abuse_answers), configured_burst_pongs=pongs)
        for raw in (client, abuser, strict):
            await raw.close()
        assert not tracebacks(cluster)


async def test_frame_flood_does_not_fill_gateway_memory() -> None:
    frame_bytes, limit_mb = 32 * 1024, 200
    with private_cluster(gateways=1, relays=1) as cluster:  # docs/protocol.md's default limits
        gateway = cluster.gateways[0][0]
        flooder = await RawSocket.connect(_port(cluster))
        frame = encode_frame(TEXT, _ping_of_size(frame_bytes).encode())

        async def flood() -> int:
            sent = 0
            try:
                while sent < limit_mb * 1_000_000 // frame_bytes:
                    flooder.send_raw(frame * 64)
                    await flooder.drain()
                    sent += 64
            except (ConnectionError, OSError):
                pass  # the gateway closed it: that is how it should end
            return sent

        before = rss_kib(gateway.pid)
        with PeakRss(gateway.pid) as rss:
            writer = asyncio.create_task(flood())
            answers: list[dict[str, Any]] = []
            while flooder.close_code is None:
                message = await flooder.read_message(timeout=20)
                if message.opcode == TEXT:
                    answers.append(message.json())
            sent = await asyncio.wait_for(writer, 20)
        growth = max(rss.samples) - before
        record("limits.frame_flood", frame_bytes=frame_bytes, frames_written=sent,
               mb_written=round(sent * frame_bytes / 1e6, 1), answers=len(answers),
               close_code=flooder.close_code, rss_before_kib=before,
               rss_max_kib=max(rss.samples), rss_growth_kib=growth)
        # Handled frames are freed at once; only what is read ahead may be held.
        assert growth < 16 * 1024, f"gateway RSS grew by {growth} KiB"
        await flooder.close()


# --- room size ------------------------------------------------------------------------------

async def test_room_size_limit_answers_room_is_full_at_the_configured_capacity() -> None:
    capacity = 5
    with private_cluster(gateways=2, relays=1,
                         SWITCHBOARD_ROOM_CAPACITY=str(capacity)) as cluster:
        room = _room()
        members = [await Peer.connect(cluster.url(i % 2)) for i in range(capacity)]
        for count, member in enumerate(members):
            joined = await member.join(room)
            assert len(joined["peers"]) == count
        for index, member in enumerate(members):
            for _ in range(capacity - 1 - index):
                await member.expect("new_peer")
        extra = await Peer.connect(cluster.url(1))
        await extra.send(event="join_room", room_id=room)
        await extra.expect_error("room is full", "join_room")
        # Nobody saw it come in: a new_peer, however late, would come before each member's
        # own message (the refused join was on the room's stream before it). And Redis
        # holds exactly `capacity` members.
        for member in members:
            await member.assert_nothing_pending()
        digest = room_digest(room)
        assert cluster.redis.cli("hlen", room_members(shard_of(digest, 64), digest)).strip() \
            == str(capacity)
        # The refused socket is in no room: it may join another one, or this one once a
        # place is free.
        await extra.send(event="update_status", status={"name": "x"})
        await extra.expect_error("currently not in any room", "update_status")
        await members[-1].send(event="leave_room")
        for member in members[:-1]:
            await member.expect("peer_left")
        joined = await extra.join(room)
        assert len(joined["peers"]) == capacity - 1
        for peer in [*members, extra]:
            await peer.close()
        assert not tracebacks(cluster)


# --- slow consumer --------------------------------------------------------------------------

async def test_slow_consumer_is_closed_1013_and_gateway_memory_stays_bounded() -> None:
    send_buffer = 1024 * 1024  # docs/protocol.md's default
    message_bytes, messages_each = 4096, 2500  # 2 x 10 MB: far past every buffer on the way
    with private_cluster(gateways=1, relays=1, **UNLIMITED) as cluster:
        gateway = cluster.gateways[0][0]
        port = _port(cluster)
        room = _room()
        flooder = await Peer.connect(cluster.url(0))
        await flooder.join(room)
        # A small receive buffer, so that the kernel does not hold megabytes for them.
        stalled = await RawSocket.connect(port, recv_buffer=64 * 1024)  # never reads again
        paused = await RawSocket.connect(port, recv_buffer=64 * 1024)  # reads again later
        ids = []
        for raw in (stalled, paused):
            raw.send_json(event="join_room", room_id=room)
            ids.append((await raw.expect_json())["own_id"])
            await flooder.expect("new_peer")
        stalled_id, paused_id = ids

        left: dict[str, float] = {}
        seen: dict[str, int] = {}
        barrier = asyncio.Event()
        pongs: asyncio.Queue[None] = asyncio.Queue()

        async def read_flooder() -> None:
            while True:
                frame = await flooder.recv(timeout=60)
                if frame["event"] != "pong":
                    seen[frame["event"]] = seen.get(frame["event"], 0) + 1
                if frame["event"] == "peer_left":
                    left[frame["sender_id"]] = time.monotonic()
                elif frame["event"] == "pong":
                    pongs.put_nowait(None)
                elif frame.get("sender_id") == flooder.id and frame.get("barrier"):
                    barrier.set()

        reader = asyncio.create_task(read_flooder())
        pad = "x" * (message_bytes - 120)
        before = rss_kib(gateway.pid)
        started = time.monotonic()
        with PeakRss(gateway.pid) as rss:
            for seq in range(messages_each):
                for target in (stalled_id, paused_id):
                    await flooder.send(event="send_to_peer", peer_id=target,
                                       data={"event": "message", "seq": seq, "pad": pad})
                if seq % 64 == 63:
                    # Paced: the gateway has taken in all of these before the next ones
                    # come, so its memory is not filled by the flooder's own backlog
                    # (test_frame_flood_does_not_fill_gateway_memory is about that).
                    await flooder.send(event="ping")
                    await asyncio.wait_for(pongs.get(), 30)
            # Everything published before this came back has reached the gateway.
            await flooder.send(event="send_to_peer", peer_id=flooder.id,
                               data={"event": "message", "barrier": True})
            await asyncio.wait_for(barrier.wait(), 30)
            flood_s = time.monotonic() - started
            # The client that reads again finds what the kernel held, then the close.
            frames_read = 0
            while paused.close_code is None:
                frame = await paused.read_frame(timeout=15)
                frames_read += frame.opcode == TEXT
            paused_code = paused.close_code
            # The one that never reads cannot be told, but it must be dropped: its room
            # sees it leave (bounded poll on what the reader task collected).
            deadline = time.monotonic() + 15
            while stalled_id not in left and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        after = rss_kib(gateway.pid)
        reader.cancel()
        sent_mb = 2 * messages_each * message_bytes / 1e6
        figures = {"rss_before_kib": before, "rss_max_kib": max(rss.samples),
                   "rss_after_kib": after, "rss_growth_kib": max(rss.samples) - before,
                   "sent_mb": sent_mb, "flood_s": round(flood_s, 2),
                   "paused_close_code": paused_code, "paused_frames_read": frames_read,
                   "stalled_dropped": stalled_id in left, "paused_dropped": paused_id in left,
                   "flooder_frames": seen}
        record("limits.slow_consumer", **figures)
        # Memory: at most the two send buffers, plus a few MB of slack, never the flood.
        assert max(rss.samples) - before < (2 * send_buffer + 8 * 1024 * 1024) // 1024, figures
        assert paused_code == 1013, figures
        assert paused_id in left, figures
        assert stalled_id in left, figures
        await flooder.close()
        for raw in (stalled, paused):
            await raw.close()
        assert not tracebacks(cluster)


# --- idle sockets and server pings ----------------------------------------------------------

async def test_idle_socket_closed_1001_while_sockets_that_answer_pings_stay() -> None:
    idle, interval = 2.0, 0.5
    with private_cluster(gateways=1, relays=1, SWITCHBOARD_IDLE_TIMEOUT=str(idle),
                         SWITCHBOARD_PING_INTERVAL=str(interval)) as cluster:
        port = _port(cluster)
        started = time.monotonic()
        # A normal client: websockets answers the server's pings; it sends nothing itself
        # (no pings of its own either).
        polite = await websockets.connect(cluster.url(0), ping_interval=None)
        answering = await RawSocket.connect(port)  # answers pings by hand, nothing else
        silent = await RawSocket.connect(port)  # completed the handshake, then nothing
        ping_times: list[float] = []
        texts: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def answer_pings() -> None:
            while True:
                frame = await answering.read_frame(timeout=30)
                if frame.opcode == PING:
                    ping_times.append(time.monotonic())
                    answering.send(frame.payload, PONG)
                elif frame.opcode == TEXT:
                    texts.put_nowait(frame.json())
                else:
                    return  # closed

        answerer = asyncio.create_task(answer_pings())
        code = await silent.closed_with(timeout=idle + 3)
        silent_closed_after = time.monotonic() - started
        assert code == 1001
        assert idle <= silent_closed_after <= idle + interval + 1.5, silent_closed_after
        assert silent.pings >= 2, "the gateway sent no pings before closing the idle socket"
        # Past twice the timeout, the sockets that answered pings are still open.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(polite.wait_closed(), started + 2 * idle + 0.5
                                   - time.monotonic())
        assert not answerer.done(), f"closed with {answering.close_code}"
        await polite.send('{"event":"ping"}')
        assert json.loads(await asyncio.wait_for(polite.recv(), 5)) == {"event": "pong"}
        answering.send_json(event="ping")
        assert await asyncio.wait_for(texts.get(), 5) == {"event": "pong"}
        # The pings come every interval.
        gaps = [b - a for a, b in zip(ping_times, ping_times[1:], strict=False)]
        assert len(ping_times) >= 2 * idle / interval - 2, ping_times
        assert all(interval * 0.5 <= gap <= interval * 2.5 for gap in gaps), gaps
        record("limits.idle", idle_timeout_s=idle, ping_interval_s=interval,
               silent_closed_after_s=round(silent_closed_after, 2), silent_pings=silent.pings,
               answering_pings=len(ping_times), max_ping_gap_s=round(max(gaps), 3))
        answerer.cancel()
        await polite.close()
        for raw in (answering, silent):
            await raw.close()
        assert not tracebacks(cluster)


# --- request heads that never end ----------------------------------------------------------

async def test_a_request_head_never_finished_is_closed_at_the_request_timeout() -> None:
    with private_cluster(gateways=1, relays=1, SANIC_REQUEST_TIMEOUT="1") as cluster:
        port = _port(cluster)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        started = time.monotonic()
        # Meanwhile a client that sends its whole handshake is served.
        client = await RawSocket.connect(port)
        client.send_json(event="ping")
        assert (await client.read_frame()).json() == {"event": "pong"}
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing said
        closed_after = time.monotonic() - started
        assert 0.9 <= closed_after <= 3.0, closed_after
        writer.close()
        await client.close()
        assert not tracebacks(cluster)


# --- stream length --------------------------------------------------------------------------

async def test_stream_maxlen_bounds_a_shard_stream_without_relays_and_service_resumes() -> None:
    maxlen, events = 1000, 6000
    with private_cluster(gateways=1, relays=1, SWITCHBOARD_STREAM_MAXLEN=str(maxlen),
                         **UNLIMITED) as cluster:
        room = _room()
        stream = shard_stream(shard_of(room_digest(room), 64))
        sender, receiver = await Peer.connect(cluster.url(0)), await Peer.connect(cluster.url(0))
        await sender.join(room)
        await receiver.join(room)
        await sender.expect("new_peer")
        # Every relay stops: nothing reads the shard streams any more.
        relay = cluster.relays[0]
        relay.signal(signal.SIGTERM)
        assert await asyncio.to_thread(relay.wait, 15) == 0
        added_before = _entries_added(cluster, stream)
        for seq in range(events):
            await sender.send(event="send_to_peer", peer_id=receiver.id,
                              data={"event": "message", "seq": seq})
        # The gateway XADDs in the background: wait (bounded) until the stream has seen
        # them all.
        await eventually(lambda: _entries_added(cluster, stream) - added_before >= events,
                         30, "every event XADDed")
        length = int(cluster.redis.cli("xlen", stream))
        added = _entries_added(cluster, stream) - added_before
        assert added == events
        # MAXLEN ~ trims whole nodes (100 entries by default): never below the bound.
        assert maxlen <= length <= maxlen + 200, length
        # A relay comes back: what the stream kept is delivered, in order, then new events.
        cluster.start_relay()
        cluster.wait_ready(_port(cluster))
        await sender.send(event="send_to_peer", peer_id=receiver.id,
                          data={"event": "message", "seq": "after"})
        received = []
        while True:
            frame = await receiver.expect("message", timeout=15)
            if frame["seq"] == "after":
                break
            received.append(frame["seq"])
        assert received == list(range(events - len(received), events)), received[:5]
        assert maxlen <= len(received) <= length
        late = await Peer.connect(cluster.url(0))
        await late.join(room)
        await sender.expect("new_peer")
        record("limits.stream_maxlen", maxlen=maxlen, events_sent=events, xlen=length,
               delivered_after_restart=len(received))
        for peer in (sender, receiver, late):
            await peer.close()
        assert not tracebacks(cluster)


def _entries_added(cluster: Cluster, stream: str) -> int:
    """XINFO STREAM's entries-added: every entry ever XADDed, trimmed or not."""
    with redis.Redis.from_url(cluster.redis.url) as client:
        return int(client.xinfo_stream(stream)["entries-added"])
