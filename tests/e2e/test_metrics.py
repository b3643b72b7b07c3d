"""/metrics follow real traffic: a gateway (on a port of its own) and a relay of
their own, scraped before and after, parsed with prometheus-client's parser."""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Iterator

import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from harness.processes import ROOT, Cluster, eventually, free_port, http_get
from tests.faults.support import private_cluster
from tests.peers import TIMEOUT, Peer

METRICS_PORT = free_port()
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def metered() -> Iterator[Cluster]:
    with private_cluster(gateways=1, relays=1,
                         SWITCHBOARD_METRICS_PORT=str(METRICS_PORT)) as cluster:
        yield cluster


def scrape_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain")
        return str(reply.read().decode())


def samples(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def relay_port(cluster: Cluster) -> int:
    return cluster.relay_health_ports[cluster.relays[0].pid]


def test_the_public_port_does_not_expose_metrics_when_they_have_their_own(
        metered: Cluster) -> None:
    assert http_get(metered.gateways[0][1], "/metrics")[0] == 404
    assert "switchboard_connections" in scrape_text(METRICS_PORT)


async def test_metrics_follow_the_traffic(metered: Cluster) -> None:
    room, other = f"metrics-{os.getpid()}", f"metrics-{os.getpid()}-b"
    gw0, relay0 = samples(scrape_text(METRICS_PORT)), samples(scrape_text(relay_port(metered)))
    a, b, c = [await Peer.connect(metered.url(0)) for _ in range(3)]
    await a.join(room)
    await b.join(room)
    await a.expect("new_peer")
    await c.join(other)
    assert value(samples(scrape_text(METRICS_PORT)), "switchboard_connections") == 3
    await a.send(event="ping")
    await a.expect("pong")
    for n in range(3):
        await a.send(event="send_to_peer", peer_id=b.id, data={"event": "message", "n": n})
        await b.expect("message")
    await b.send_raw("not json")
    await b.expect_error("invalid message")
    await b.send_raw(b"\x00binary")
    await b.expect_error("invalid message")
    await b.send(event="nope")
    await b.expect_error("unknown event", "nope")
    await c.send(event="update_status", status={"name": "Cy"})
    await c.expect("peer_updated_status")
    await c.send(event="leave_room")
    await b.close()  # the client closes
    await a.expect("peer_left")
    await a.send_raw("x" * (70 * 1024))  # past the frame limit: the server closes 1009
    assert await a.closed_with() == 1009
    await c.close()

    async def settled() -> bool:
        relay = samples(scrape_text(relay_port(metered)))
        return value(relay, "palava_room_closed_total") - value(
            relay0, "palava_room_closed_total") == 2

    await eventually(settled, 10, "both rooms closed, as the relay counts")
    gw = samples(scrape_text(METRICS_PORT))
    relay = samples(scrape_text(relay_port(metered)))

    def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    received = "switchboard_frames_received_total"
    assert {event: delta(gw, gw0, received, event=event) for event in (
        "join_room", "ping", "send_to_peer", "invalid", "unknown", "update_status",
        "leave_room")} == {"join_room": 3, "ping": 1, "send_to_peer": 3, "invalid": 2,
                           "unknown": 1, "update_status": 1, "leave_room": 1}
    errors = "switchboard_errors_sent_total"
    assert delta(gw, gw0, errors, message="invalid message") == 2
    assert delta(gw, gw0, errors, message="unknown event") == 1
    # Frames written: 3 joined_room, 1 new_peer, 1 pong, 3 messages, 3 errors, 1 status,
    # 1 peer_left, at least.
    assert delta(gw, gw0, "switchboard_frames_sent_total") >= 13
    assert value(gw, "switchboard_connections") == 0
    closes = "switchboard_closes_total"
    assert delta(gw, gw0, closes, code="1009") == 1
    assert delta(gw, gw0, closes, code="client") >= 1
    assert delta(gw, gw0, "switchboard_connection_duration_seconds_count") == 3

    applied = "switchboard_events_applied_total"
    assert {event: delta(relay, relay0, applied, event=event) for event in (
        "join_room", "send_to_peer", "update_status", "leave_room")} == {
        "join_room": 3, "send_to_peer": 3, "update_status": 1, "leave_room": 3}
    assert delta(relay, relay0, "palava_room_created_total") == 2
    assert delta(relay, relay0, "palava_joined_room_total") == 3
    assert delta(relay, relay0, "palava_leave_room_total") == 3
    assert delta(relay, relay0, "switchboard_room_peak_members_count") == 2
    assert delta(relay, relay0, "switchboard_room_peak_members_sum") == 3  # 2 and 1
    assert delta(relay, relay0, "switchboard_room_duration_seconds_count") == 2
    assert value(relay, "switchboard_rooms") == 0 and value(relay, "switchboard_room_members") == 0
    assert value(relay, "switchboard_shards_held") == 64
    assert value(relay, "switchboard_stream_lag_events") == 0
    assert delta(relay, relay0, "switchboard_batch_events_count") >= 1
    assert delta(relay, relay0, "switchboard_commit_seconds_count") >= 1


async def test_no_room_name_peer_id_or_address_in_any_label(metered: Cluster) -> None:
    room = f"secret-room-{os.getpid()}"
    a = await Peer.connect(metered.url(0))
    joined = await a.join(room)
    try:
        texts = scrape_text(METRICS_PORT) + scrape_text(relay_port(metered))
        for secret in (room, joined["own_id"], "127.0.0.1"):
            assert secret not in texts
        for family in text_string_to_metric_families(texts):
            for sample in family.samples:
                assert len(sample.labels) <= 1, sample  # one bounded label at most
    finally:
        await a.close()


async def test_reconnects_to_redis_are_counted(metered: Cluster) -> None:
    before = value(samples(scrape_text(METRICS_PORT)), "switchboard_redis_reconnects_total")
    peer = await Peer.connect(metered.url(0))
    await peer.join(f"reconnects-{os.getpid()}")  # its channel is subscribed by now
    # Redis drops the gateway's pub/sub connection: the socket in a room closes 1012, and
    # the gateway connects again.
    for line in metered.redis.cli("client", "list").splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if int(fields.get("ssub", "0")) > 0:  # shard channels (SSUBSCRIBE)
            metered.redis.cli("client", "kill", "id", fields["id"])
    assert await peer.closed_with() == 1012
    await eventually(lambda: value(samples(scrape_text(METRICS_PORT)),
                                   "switchboard_redis_reconnects_total") > before, 10,
                     "the reconnect counted")
    assert value(samples(scrape_text(METRICS_PORT)), "switchboard_closes_total",
                 code="1012") >= 1
    async with websockets.connect(metered.url(0), open_timeout=TIMEOUT) as ws:
        await ws.send('{"event":"ping"}')
        assert await ws.recv() == '{"event":"pong"}'


def test_the_grafana_dashboard_shows_every_metric_and_only_those(metered: Cluster) -> None:
    dashboard = json.loads((ROOT / "docs" / "grafana" / "switchboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"]
             for target in panel.get("targets", [])]
    used = {re.sub(r"_(bucket|sum|count|total)$", "", name)
            for expr in exprs for name in re.findall(r"\b((?:switchboard|palava)_\w+)", expr)}
    exposed = {family.name for port in (METRICS_PORT, relay_port(metered))
               for family in text_string_to_metric_families(scrape_text(port))
               if family.name.startswith(("switchboard_", "palava_"))}
    assert used == exposed, (used - exposed, exposed - used)
