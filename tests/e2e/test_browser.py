"""The demo page (/demo) in headless Chromium: real palava-client calls through the service.

Two pages join one room through the two different gateways of the `cluster` fixture and
must get a WebRTC connection (palava-client's `peer_connection_established`) carrying
each other's camera; a third page joins and leaves, a fourth finds the room full, a chat
line typed on one page shows on the other. Then the page loses the server: for 3 s (it
resumes, the call goes on, the other page sees nothing), through a gateway's shutdown (it
resumes through another), and with resume off (it rejoins as a new peer).

The browser (tests/e2e/tabs.py) runs in a loopback-only network namespace; the pages show
their state on `window.demo` (browser/demo/demo.js), which the waits below read.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser

from gateway.mint_token import mint_token
from harness.processes import Cluster, http_get
from tests.e2e.tabs import ARTIFACTS, Tab
from tests.netns import LoopbackNamespace

JOIN_S = 15
CALL_S = 25
SEE_S = 15


# --- one browser tab on the demo page ---


class DemoPage(Tab):
    """The mesh demo page (/demo), whose state is `window.demo`."""

    STATE = "window.demo"

    @classmethod
    async def open(cls, browser: Browser, port: int, room: str, name: str,
                   **params: str) -> DemoPage:
        """Open /demo?room=..&name=.. on that gateway: the page joins by itself."""
        query = urlencode({"room": room, "name": name, **params})
        return await cls.load(browser, f"http://127.0.0.1:{port}/demo?{query}", name)

    @classmethod
    async def open_secure(cls, browser: Browser, port: int, room: str, name: str) -> DemoPage:
        """/demo over https:// (a certificate the test made: not checked), so the page
        signals over wss://."""
        query = urlencode({"room": room, "name": name})
        return await cls.load(browser, f"https://127.0.0.1:{port}/demo?{query}", name,
                              ignore_https_errors=True)

    async def video_frames(self, peer_id: str) -> int:
        """Frames the video of `peer_id` has shown so far."""
        frames: int = await self.page.evaluate(
            "id => document.getElementById('video-' + id)"
            ".getVideoPlaybackQuality().totalVideoFrames", peer_id)
        return frames

    async def joined(self) -> str:
        """Wait until in the room; the peer id the server gave."""
        await self.wait("() => window.demo && window.demo.state === 'joined'",
                        timeout_s=JOIN_S, what="joined_room")
        own_id: str = await self.page.evaluate("demo.ownId")
        return own_id

    async def in_call_with(self, peer_id: str) -> None:
        """palava-client reports the peer connection established, and that peer's camera
        track plays here (decoded frames give the video element its size)."""
        await self.wait("""id => {
            const peer = demo.peers[id], video = document.getElementById('video-' + id);
            return !!peer && peer.connected && peer.hasTrack && !!video && video.videoWidth > 0;
        }""", peer_id, timeout_s=CALL_S, what=f"a call with {peer_id}")

    async def sees(self, peer_id: str, name: str) -> None:
        await self.wait("""([id, name]) => {
            const entry = document.getElementById('peer-' + id);
            return !!entry && entry.querySelector('.name').textContent === name
                && demo.peers[id] && demo.peers[id].name === name;
        }""", [peer_id, name], what=f"{name} ({peer_id}) in the peer list")

    async def no_longer_sees(self, peer_id: str) -> None:
        await self.wait("id => !document.getElementById('peer-' + id) && !(id in demo.peers)",
                        peer_id, what=f"{peer_id} gone from the peer list")

    async def say(self, text: str) -> None:
        await self.page.fill("#chat-input", text)
        await self.page.press("#chat-input", "Enter")

    async def heard(self, name: str, text: str) -> None:
        await self.wait("""([name, text]) =>
            demo.chat.some(line => !line.own && line.name === name && line.text === text)
            && [...document.querySelectorAll('#chat-log li')].some(
                item => item.textContent === name + ':' + text)
        """, [name, text], what=f"chat line {name}: {text!r}")

def gateway_port(cluster: Cluster, index: int) -> int:
    return cluster.gateways[index][1]


# --- the call ---


async def test_two_browsers_call_through_different_gateways(
    browser: Browser, cluster: Cluster, room: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ann = await DemoPage.open(browser, gateway_port(cluster, 0), room, "Ann")
    ann_id = await ann.joined()
    bob = await DemoPage.open(browser, gateway_port(cluster, 1), room, "Bob")
    bob_id = await bob.joined()

    await ann.in_call_with(bob_id)
    await bob.in_call_with(ann_id)
    await ann.sees(bob_id, "Bob")
    await bob.sees(ann_id, "Ann")
    timings = call_timings(await ann.state(), await bob.state())

    # A third joins and leaves; while the room (capacity 3) is full, a fourth is refused.
    cid = await DemoPage.open(browser, gateway_port(cluster, 0), room, "Cid")
    cid_id = await cid.joined()
    await ann.sees(cid_id, "Cid")
    await bob.sees(cid_id, "Cid")
    dee = await DemoPage.open(browser, gateway_port(cluster, 1), room, "Dee")
    await dee.wait("""() => demo.state === 'idle' && demo.notices.some(
                          n => n.kind === 'error' && n.text.includes('room is full'))""",
                   what="the server's 'room is full'")
    assert "room is full" in await dee.page.inner_text("#notices")
    await cid.page.click("#leave")
    await ann.no_longer_sees(cid_id)
    await bob.no_longer_sees(cid_id)
    assert set((await ann.state())["peers"]) == {bob_id}

    await ann.say("Hello from Ann")
    await bob.heard("Ann", "Hello from Ann")
    await bob.page.fill("#chat-input", "Hi Ann, Bob here")
    await bob.page.click("#chat-send")
    await ann.heard("Bob", "Hi Ann, Bob here")

    ARTIFACTS.mkdir(exist_ok=True)
    await ann.page.screenshot(path=ARTIFACTS / "demo.png")
    (ARTIFACTS / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    with capsys.disabled():
        print("\nA call in Chromium, from the second page's join_room: "
              + ", ".join(f"{key} {value:.0f} ms" for key, value in timings.items()))
    for page in (ann, bob, cid, dee):
        await page.close()


def call_timings(first: dict[str, Any], second: dict[str, Any]) -> dict[str, float]:
    """Milliseconds from the second page's join_room (when the call can start) to its
    joined_room, and on each page to palava-client's `peer_connection_established` and to
    the other's first video frame. Both pages read the same clock."""
    start = second["timings"]["joinSentAt"]
    timings = {"second page: join_room -> joined_room": second["timings"]["joinedAt"] - start}
    for label, page, other in (("second", second, first), ("first", first, second)):
        for event, key in (("connected", "connectedAt"), ("first video frame", "videoAt")):
            timings[f"{label} page: {event}"] = page["timings"][key][other["ownId"]] - start
    return timings


# --- losing the server ---


async def test_the_page_resumes_after_a_3_s_outage_and_the_call_goes_on(
    browser: Browser, cluster: Cluster, netns: LoopbackNamespace, room: str
) -> None:
    """One page's network is gone for 3 s. It resumes: same peer id, its video
    never stops, and the other page sees no peer_left."""
    port = gateway_port(cluster, 0)
    eve = await DemoPage.open(browser, port, room, "Eve")
    eve_id = await eve.joined()
    fay = await DemoPage.open(browser, gateway_port(cluster, 1), room, "Fay")
    fay_id = await fay.joined()
    await eve.in_call_with(fay_id)
    await fay.in_call_with(eve_id)

    netns.bridges[port].outage(3.0)
    await eve.wait("() => demo.notices.some(n => n.kind === 'resuming')",
                   what="the page noticing the drop")
    # While the server is out of reach, the call's media goes on, both ways.
    before = {page.name: await page.video_frames(other)
              for page, other in ((eve, fay_id), (fay, eve_id))}
    await eve.wait("([id, n]) => document.getElementById('video-' + id)"
                   ".getVideoPlaybackQuality().totalVideoFrames > n + 30",
                   [fay_id, before["Eve"]], what="Fay's video playing on during the outage")
    await fay.wait("([id, n]) => document.getElementById('video-' + id)"
                   ".getVideoPlaybackQuality().totalVideoFrames > n + 30",
                   [eve_id, before["Fay"]], what="Eve's video playing on during the outage")
    assert not (await eve.state())["notices"][-1]["kind"] == "resumed", "no outage at all?"
    await eve.wait("() => demo.resumes === 1 && demo.state === 'joined'", timeout_s=15,
                   what="the resume after the outage")
    state = await eve.state()
    assert (state["ownId"], state["reconnects"]) == (eve_id, 0)
    assert [n["kind"] for n in state["notices"]] == ["resuming", "resumed"]
    fay_state = await fay.state()
    assert fay_state["peersLeft"] == 0 and set(fay_state["peers"]) == {eve_id}
    # And signaling works again: a chat line crosses.
    await eve.say("back")
    await fay.heard("Eve", "back")
    await eve.close()
    await fay.close()


async def test_the_page_resumes_through_another_gateway_after_a_shutdown(
    browser: Browser, cluster: Cluster, netns: LoopbackNamespace, room: str
) -> None:
    leaving, port = cluster.start_gateway(SWITCHBOARD_SHUTDOWN_SECONDS="1")
    # The bridge stands for a load balancer in front of the gateways.
    balancer = await netns.bridge(port)
    eve = await DemoPage.open(browser, port, room, "Eve")
    eve_id = await eve.joined()
    fay = await DemoPage.open(browser, gateway_port(cluster, 0), room, "Fay")
    fay_id = await fay.joined()
    await fay.sees(eve_id, "Eve")
    await eve.in_call_with(fay_id)

    leaving.signal(signal.SIGTERM)
    await eve.wait("""() => {
        const kinds = demo.notices.map(n => n.kind);
        return kinds[0] === 'shutdown' && kinds[1] === 'resuming'
            && demo.notices[0].text.includes('1 s');
    }""", what="the shutdown notice, then the resume under way")
    assert await asyncio.to_thread(leaving.wait, 10) == 0
    # The balancer now sends the page's retries to another replica.
    balancer.target = gateway_port(cluster, 1)
    await eve.wait("() => demo.resumes === 1 && demo.state === 'joined'",
                   what="a resume through another gateway")
    state = await eve.state()
    assert (state["ownId"], state["reconnects"]) == (eve_id, 0)
    await eve.in_call_with(fay_id)
    assert (await fay.state())["peersLeft"] == 0
    await eve.say("still here")
    await fay.heard("Eve", "still here")
    await eve.close()
    await fay.close()


async def test_without_resume_the_page_rejoins_after_a_lost_connection(
    browser: Browser, cluster: Cluster, netns: LoopbackNamespace, room: str
) -> None:
    """`?resume=off`, or a resume the service refuses: the page joins again as a new
    peer, and the call is set up anew."""
    port = gateway_port(cluster, 0)
    eve = await DemoPage.open(browser, port, room, "Eve", resume="off")
    eve_id = await eve.joined()
    fay = await DemoPage.open(browser, gateway_port(cluster, 1), room, "Fay")
    fay_id = await fay.joined()
    await fay.sees(eve_id, "Eve")

    netns.bridges[port].cut()
    await eve.wait("() => demo.reconnects === 1 && demo.state === 'joined'",
                   what="a rejoin after the connection dropped")
    new_id = await eve.joined()
    assert new_id != eve_id
    await fay.no_longer_sees(eve_id)
    await fay.sees(new_id, "Eve")
    await eve.in_call_with(fay_id)
    kinds = [notice["kind"] for notice in (await eve.state())["notices"]]
    assert kinds == ["connection", "reconnected"], kinds
    await eve.close()
    await fay.close()


async def test_the_demo_passes_a_join_token(
    browser: Browser, cluster: Cluster, netns: LoopbackNamespace, room: str
) -> None:
    secret = "a-join-secret-for-the-browser-test-32b"
    process, port = cluster.start_gateway(SWITCHBOARD_JOIN_SECRET=secret,
                                          SWITCHBOARD_SHUTDOWN_SECONDS="0")
    await netns.bridge(port)
    try:
        refused = await DemoPage.open(browser, port, room, "Gus")
        await refused.wait("""() => demo.state === 'idle' && demo.notices.some(
                              n => n.kind === 'error' && n.text.includes('not allowed'))""",
                           what="the server's 'not allowed'")
        admitted = await DemoPage.open(browser, port, room, "Hal",
                                       token=mint_token(room, 60, secret, "HS256"))
        await admitted.joined()
        await refused.close()
        await admitted.close()
    finally:
        # Off the event loop, which carries the namespace bridge: the pages' last closes
        # must reach the gateway, or it waits for them until its stop times out.
        assert await asyncio.to_thread(process.stop) == 0
        cluster.gateways.remove((process, port))


# --- the page without palava-client, and what else /demo serves ---


def test_every_gateway_serves_the_demo_and_palava_client(cluster: Cluster) -> None:
    for index in (0, 1):
        port = gateway_port(cluster, index)
        status, kind, page = http_get(port, "/demo")
        assert (status, kind) == (200, "text/html; charset=utf-8")
        assert '<script src="/demo/palava.bundle.js"></script>' in page
        status, kind, bundle = http_get(port, "/demo/palava.bundle.js")
        assert (status, kind) == (200, "text/javascript; charset=utf-8")
        assert "palava v2." in bundle
        assert http_get(port, "/demo/demo.js")[:2] == (200, "text/javascript; charset=utf-8")
        assert http_get(port, "/demo/demo.css")[:2] == (200, "text/css; charset=utf-8")
        assert http_get(port, "/demo/index.html")[0] == 404  # only the names above
        assert http_get(port, "/demo/..%2fdemo.py")[0] == 404


def test_without_palava_client_the_demo_says_how_to_install_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    process, port = cluster.start_gateway(SWITCHBOARD_PALAVA_BUNDLE=str(tmp_path / "none.js"))
    try:
        status, kind, page = http_get(port, "/demo")
        assert (status, kind) == (200, "text/html; charset=utf-8")
        assert "npm ci --no-audit --no-fund" in page
        assert "SWITCHBOARD_PALAVA_BUNDLE" in page
        assert http_get(port, "/demo/palava.bundle.js")[0] == 404
        assert http_get(port, "/demo/demo.css")[0] == 200
    finally:
        assert process.stop() == 0


async def secure_demo_call(browser: Browser, port: int, room: str) -> None:
    """Two /demo pages over https:// on `port` (a gateway with its own certificate, or a
    proxy in front of gateways) call each other: their signaling went over wss://."""
    ann = await DemoPage.open_secure(browser, port, room, "Ann")
    bob = await DemoPage.open_secure(browser, port, room, "Bob")
    try:
        ann_id, bob_id = await ann.joined(), await bob.joined()
        assert await ann.page.evaluate("location.protocol") == "https:"
        await ann.in_call_with(bob_id)
        await bob.in_call_with(ann_id)
    finally:
        await asyncio.gather(ann.close(), bob.close())
