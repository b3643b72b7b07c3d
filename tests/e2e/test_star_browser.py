"""StarSession (/client/switchboard.js) and the broadcast demo in headless Chromium.

A host with a fake camera and three clients, on both gateways of the shared cluster, run
StarSession as a page of a user's would: every client plays the host's video, and the host
(only) the one client's that has a camera; a client's message reaches the host and the
two other clients with its `senderId`; the host's `peers` shows three connected links. Then the host calls `close()`: the longest-present client
becomes host, the other two connect to it without reloading, and messages flow again.
The broadcast demo (/demo/broadcast), built on StarSession, is driven through its page.

The pages record what StarSession reports on `window.star` (`HARNESS`); the waits read it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser

from harness.processes import Cluster, http_get
from tests.e2e.tabs import ARTIFACTS, Tab
from tests.netns import LoopbackNamespace

LINK_S = 25  # ICE, DTLS and the DataChannel, on a loaded 2-core machine

# Runs in a page of the gateway's origin: import the library, start a session, record.
HARNESS = """async ({room, name, camera, options}) => {
  // Every RTCPeerConnection the library makes, so that a test can kill one (as a dead
  // network would) and watch the library recover.
  const Native = window.RTCPeerConnection;
  window.connections = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.connections.push(this); }
  };
  const { StarSession } = await import('/client/switchboard.js');
  const stream = camera
    ? await navigator.mediaDevices.getUserMedia({ video: true, audio: true }) : null;
  const star = window.star = {
    peerId: null, hostId: null, isHost: false, hosts: [], messages: [], states: {},
    connected: {}, playing: {}, errors: [], events: [], startedAt: Date.now(),
  };
  const session = window.session = new StarSession({
    room, status: { name }, stream, heartbeat: { intervalMs: 500, idleTimeoutMs: 8000 },
    ...options,
  });
  const note = () => Object.assign(star, {
    peerId: session.peerId, hostId: session.hostId, isHost: session.isHost });
  for (const type of ['negotiating', 'connecting', 'connected', 'disconnected', 'closed',
                      'resuming', 'resumed']) {
    session.addEventListener(type, (e) => star.events.push([type, e.detail?.peerId ?? null]));
  }
  session.addEventListener('connected', (e) => { star.connected[e.detail.peerId] = Date.now(); });
  session.addEventListener('disconnected', (e) => { delete star.connected[e.detail.peerId]; });
  session.addEventListener('host', (e) => { star.hosts.push(e.detail.hostId); note(); });
  session.addEventListener('message', (e) => star.messages.push(e.detail));
  session.addEventListener('peers', (e) => { star.states = e.detail.states; });
  session.addEventListener('error', (e) => star.errors.push(e.detail.message));
  session.addEventListener('stream', (e) => {
    const video = document.createElement('video');
    Object.assign(video, { muted: true, autoplay: true, srcObject: e.detail.stream });
    video.addEventListener('loadeddata', () => { star.playing[e.detail.peerId] = Date.now(); });
    document.body.appendChild(video);
    video.play().catch(() => {});
  });
  await session.start();
  note();
  return session.peerId;
}"""


class StarTab(Tab):
    """A page of the gateway's origin running one StarSession through `HARNESS`."""

    STATE = "window.star"
    peer_id: str = ""

    @classmethod
    async def start(cls, browser: Browser, port: int, room: str, name: str,
                    camera: bool = False, **options: Any) -> StarTab:
        """A page that runs `new StarSession({room, status: {name}, ...options})`."""
        tab = await cls.load(browser, f"http://127.0.0.1:{port}/healthz", name)
        tab.peer_id = await tab.page.evaluate(HARNESS, {
            "room": room, "name": name, "camera": camera, "options": options})
        return tab

    async def connected_to(self, peer_id: str) -> None:
        await self.wait("id => id in window.star.connected", peer_id, LINK_S,
                        f"a connected link to {peer_id}")

    async def plays_video_of(self, peer_id: str) -> None:
        await self.wait("id => id in window.star.playing", peer_id, LINK_S,
                        f"{peer_id}'s video playing")

    async def heard(self, sender: str, data: dict[str, Any]) -> None:
        await self.wait("""([sender, data]) => window.star.messages.some(m =>
            m.senderId === sender && JSON.stringify(m.data) === JSON.stringify(data))""",
                        [sender, data], what=f"{data} from {sender}")

    async def messages(self) -> list[dict[str, Any]]:
        return list((await self.state())["messages"])

    async def send(self, data: dict[str, Any]) -> None:
        await self.page.evaluate("data => window.session.send(data)", data)


async def connected_at(tabs: list[StarTab], peer_id: str) -> list[float]:
    """When each tab's link to `peer_id` connected (epoch ms, one clock for all pages)."""
    return [(await tab.state())["connected"][peer_id] for tab in tabs]


async def connected_after_start(tabs: list[StarTab], peer_id: str) -> list[float]:
    """Milliseconds from each tab's `new StarSession` to its link to `peer_id` connected."""
    return [state["connected"][peer_id] - state["startedAt"]
            for state in [await tab.state() for tab in tabs]]


async def test_a_host_and_three_clients_then_a_handover(
        browser: Browser, cluster: Cluster, room: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ports = [port for _, port in cluster.gateways[:2]]
    host = await StarTab.start(browser, ports[0], room, "Host", camera=True)
    # Client1 has a camera too: its stream goes to the host only (and, once it is host,
    # to everyone).
    clients = [await StarTab.start(browser, ports[i % 2], room, f"Client{i}", camera=i == 1)
               for i in (1, 2, 3)]
    tabs = [host, *clients]
    try:
        # Every client has the host's video; the host sees three connected links.
        assert (await host.state())["isHost"]
        for client in clients:
            assert (await client.state())["hostId"] == host.peer_id
            await client.connected_to(host.peer_id)
            await client.plays_video_of(host.peer_id)
        ids = [c.peer_id for c in clients]
        await host.wait("""ids => ids.every(id => window.star.states[id] === 'connected')
                           && Object.keys(window.star.states).length === 4""", ids, LINK_S,
                        "three connected links in `peers`")
        assert (await host.state())["states"][host.peer_id] == "connected"
        await host.plays_video_of(ids[0])
        for client in clients[1:]:
            assert set((await client.state())["playing"]) == {host.peer_id}
        first_links_ms = max(await connected_after_start(clients, host.peer_id))

        # A client's message: to the host and, relayed, to the two others; not back to it.
        said = {"text": "hello from Client1", "n": 1}
        await clients[0].send(said)
        for tab in (host, clients[1], clients[2]):
            await tab.heard(ids[0], said)
        await host.send({"text": "welcome"})
        for client in clients:
            await client.heard(host.peer_id, {"text": "welcome"})
        assert all(m["senderId"] != ids[0] for m in await clients[0].messages())
        assert all(m["senderId"] != host.peer_id for m in await host.messages())

        # The host leaves: Client1 (the longest present) takes over without a reload.
        closed_at = await host.page.evaluate("() => { window.session.close(); return Date.now(); }")
        new_host = clients[0]
        await new_host.wait("() => window.star.isHost", timeout_s=15, what="becoming host")
        for client in clients[1:]:
            await client.wait("id => window.star.hostId === id", new_host.peer_id,
                              what="the new host")
            await client.connected_to(new_host.peer_id)
            await client.plays_video_of(new_host.peer_id)
        await new_host.wait("ids => ids.every(id => window.star.states[id] === 'connected')",
                            ids[1:], LINK_S,
                            "two connected links after the handover")
        handover_ms = max(await connected_at(clients[1:], new_host.peer_id)) - closed_at
        # Messages flow again, relayed by the new host.
        said = {"text": "still here", "n": 2}
        await clients[2].send(said)
        await new_host.heard(ids[2], said)
        await clients[1].heard(ids[2], said)
        for client in clients:
            state = await client.state()
            assert state["hosts"][-1] == new_host.peer_id, state["hosts"]
            assert not state["errors"], state["errors"]

        timings = {"a client's start -> connected to the host (slowest of 3)": first_links_ms,
                   "handover (host close() -> both clients connected to the new host)":
                       handover_ms}
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "star-timings.json").write_text(json.dumps(timings, indent=2) + "\n")
        with capsys.disabled():
            print("\nStarSession in Chromium: " + ", ".join(
                f"{key} {value:.0f} ms" for key, value in timings.items()))
    finally:
        await asyncio.gather(*(tab.close() for tab in tabs))


async def test_a_client_without_signaling_keeps_its_link(
        browser: Browser, cluster: Cluster, room: str) -> None:
    """keepSignaling: false closes a client's socket once it is connected to the host (the
    gem's memory saving): the server tells the host it left, the link stays, messages go on."""
    ports = [port for _, port in cluster.gateways[:2]]
    host = await StarTab.start(browser, ports[0], room, "Host")
    quiet = await StarTab.start(browser, ports[1], room, "Quiet", keepSignaling=False)
    other = await StarTab.start(browser, ports[0], room, "Other")
    try:
        for client in (quiet, other):
            await client.connected_to(host.peer_id)
        # The server has removed Quiet from the room: the host no longer knows its status.
        await host.wait("id => window.session.statusOf(id) === undefined", quiet.peer_id,
                        what="the server's peer_left for the client without signaling")
        assert (await host.state())["states"][quiet.peer_id] == "connected"
        await quiet.send({"text": "over the link only"})
        await host.heard(quiet.peer_id, {"text": "over the link only"})
        await other.heard(quiet.peer_id, {"text": "over the link only"})
        await other.send({"text": "and back"})
        await quiet.heard(other.peer_id, {"text": "and back"})
    finally:
        await asyncio.gather(*(tab.close() for tab in (host, quiet, other)))


async def test_a_dropped_signaling_socket_resumes_and_the_links_go_on(
        browser: Browser, cluster: Cluster, netns: LoopbackNamespace, room: str) -> None:
    """StarSession joins resumable: a client's network is gone for 2 s, its signaling
    resumes (same peer id), the link to the host and the host's video go on, and the host
    hears of no leave."""
    ports = [port for _, port in cluster.gateways[:2]]
    host = await StarTab.start(browser, ports[0], room, "Host", camera=True)
    client = await StarTab.start(browser, ports[1], room, "Client")
    try:
        await client.plays_video_of(host.peer_id)
        await host.connected_to(client.peer_id)
        frames = await client.page.evaluate(VIDEO_FRAMES)
        netns.bridges[ports[1]].outage(2.0)
        await client.wait("() => window.star.events.some(([type]) => type === 'resuming')",
                          what="the drop noticed")
        await client.wait(f"() => ({VIDEO_FRAMES})() > {frames + 20}",
                          what="the host's video playing on meanwhile")
        await client.wait("() => window.star.events.some(([type]) => type === 'resumed')",
                          timeout_s=15, what="the resume")
        state = await client.state()
        assert (state["peerId"], state["hosts"]) == (client.peer_id, [host.peer_id])
        assert ["disconnected", host.peer_id] not in state["events"]
        assert await host.page.evaluate("id => window.session.statusOf(id) !== undefined",
                                        client.peer_id), "the host heard of a leave"
        assert ["disconnected", client.peer_id] not in (await host.state())["events"]
        await client.send({"text": "after the drop"})
        await host.heard(client.peer_id, {"text": "after the drop"})
    finally:
        await asyncio.gather(host.close(), client.close())


VIDEO_FRAMES = """() => Math.max(0, ...[...document.querySelectorAll('video')].map(
    v => v.getVideoPlaybackQuality().totalVideoFrames))"""


async def test_a_link_that_dies_is_negotiated_again(
        browser: Browser, cluster: Cluster, room: str) -> None:
    """The client's RTCPeerConnection dies under it: the host sees its channel close and
    offers a new connection, which the client takes; messages flow again."""
    ports = [port for _, port in cluster.gateways[:2]]
    host = await StarTab.start(browser, ports[0], room, "Host", camera=True)
    client = await StarTab.start(browser, ports[1], room, "Client")
    try:
        await client.connected_to(host.peer_id)
        await host.connected_to(client.peer_id)
        await client.page.evaluate("() => window.connections.forEach(pc => pc.close())")
        await client.wait("""id => window.star.events.filter(
            ([type, peer]) => type === 'connected' && peer === id).length === 2""",
                          host.peer_id, LINK_S, "a second connected link to the host")
        events = (await host.state())["events"]
        assert events.count(["negotiating", client.peer_id]) == 2, events
        await client.plays_video_of(host.peer_id)
        await client.send({"text": "back"})
        await host.heard(client.peer_id, {"text": "back"})
        await host.send({"text": "welcome back"})
        await client.heard(host.peer_id, {"text": "welcome back"})
        assert not (await client.state())["errors"] and not (await host.state())["errors"]
    finally:
        await asyncio.gather(host.close(), client.close())


# --- the broadcast demo ----------------------------------------------------------------


class BroadcastPage(Tab):
    """/demo/broadcast, whose state is `window.broadcast`."""

    STATE = "window.broadcast"

    @classmethod
    async def open(cls, browser: Browser, port: int, room: str, name: str) -> BroadcastPage:
        query = urlencode({"room": room, "name": name})
        page = await cls.load(browser, f"http://127.0.0.1:{port}/demo/broadcast?{query}", name)
        await page.wait("() => window.broadcast.state === 'joined'", what="joining")
        return page

    async def peer_id(self) -> str:
        return str(await self.page.evaluate("window.broadcast.peerId"))

    async def watching(self, presenter: str) -> None:
        """Connected to `presenter` (by name), whose camera plays on the stage."""
        await self.wait("""name => {
            const b = window.broadcast, video = document.getElementById('stage-video');
            return b.hostName === name && b.link === 'connected' && video.videoWidth > 0
                && !b.isHost;
        }""", presenter, LINK_S, f"{presenter}'s video on the stage")

    async def say(self, text: str) -> None:
        await self.page.fill("#chat-input", text)
        await self.page.press("#chat-input", "Enter")

    async def heard(self, name: str, text: str) -> None:
        await self.wait("""([name, text]) => [...document.querySelectorAll('#chat-log li')]
            .some(item => item.textContent === name + ':' + text)""", [name, text],
                        what=f"chat line {name}: {text!r}")

    async def sees_connected(self, names: list[str]) -> None:
        await self.wait("""names => names.every(name => [...document.querySelectorAll(
                '#peer-list li')].some(li => li.querySelector('.name').textContent === name
                && li.querySelector('.state').textContent === 'connected'))""", names,
                        LINK_S, f"{names} connected in the audience list")


async def test_the_broadcast_demo_presents_chats_and_hands_over(
        browser: Browser, cluster: Cluster, room: str) -> None:
    ports = [port for _, port in cluster.gateways[:2]]
    ann = await BroadcastPage.open(browser, ports[0], room, "Ann")
    bob = await BroadcastPage.open(browser, ports[1], room, "Bob")
    cy = await BroadcastPage.open(browser, ports[0], room, "Cy")
    try:
        await ann.wait("() => window.broadcast.isHost", what="presenting")
        await bob.watching("Ann")
        await cy.watching("Ann")
        await ann.sees_connected(["Bob", "Cy"])
        await bob.say("Hi all")
        await ann.heard("Bob", "Hi all")
        await cy.heard("Bob", "Hi all")

        await ann.page.click("#leave")
        await bob.wait("""() => window.broadcast.isHost && window.broadcast.notices.some(
            n => n.kind === 'host' && n.text === 'You are presenting now.')""",
                       what="Bob presenting")
        await cy.wait("""() => window.broadcast.notices.some(
            n => n.kind === 'host' && n.text === 'Bob is presenting now.')""",
                      what="the handover shown")
        await cy.watching("Bob")
        await bob.sees_connected(["Cy"])
        await cy.say("Bob, hello")
        await bob.heard("Cy", "Bob, hello")
        ARTIFACTS.mkdir(exist_ok=True)
        await cy.page.screenshot(path=ARTIFACTS / "broadcast.png")
    finally:
        await asyncio.gather(*(page.close() for page in (ann, bob, cy)))


# --- what every gateway serves ------------------------------------------------------------


JAVASCRIPT = "text/javascript; charset=utf-8"
LIBRARY = ["switchboard.js", "star-session.js", "peer-link.js", "signaling.js",
           "ice-servers.js", "events.js", "resumable-socket.js", "json.js", "backoff.js",
           "gateway-url.js"]


def test_every_gateway_serves_the_library_and_the_broadcast_page(cluster: Cluster) -> None:
    for _, port in cluster.gateways[:2]:
        for name in LIBRARY:
            assert http_get(port, f"/client/{name}")[:2] == (200, JAVASCRIPT), name
        assert http_get(port, "/client/nope.js")[0] == 404
        assert http_get(port, "/client/..%2fapp.py")[0] == 404
        status, kind, page = http_get(port, "/demo/broadcast")
        assert (status, kind) == (200, "text/html; charset=utf-8")
        assert '<script type="module" src="/demo/broadcast.js"></script>' in page
        for name in ("broadcast.js", "page.js", "palava-resume.js"):
            assert http_get(port, f"/demo/{name}")[:2] == (200, JAVASCRIPT)
        # The demos import the library as a user's page would.
        for name in ("broadcast.js", "demo.js", "palava-resume.js"):
            assert "from '/client/switchboard.js'" in http_get(port, f"/demo/{name}")[2]
