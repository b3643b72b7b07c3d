"""Calls through a real TURN relay (Debian's coturn, harness/coturn.py) with the credentials
the gateways hand out (SWITCHBOARD_TURN_SECRET, SWITCHBOARD_ICE_URLS): README.md, "Who may
connect: TURN credentials".

The pages are forced to relay-only without touching the libraries: an init script wraps
`RTCPeerConnection` so that every configuration gets `iceTransportPolicy: 'relay'` (no host
candidate is gathered, so a connection can only be made through coturn). The browser is in
the loopback-only namespace: it reaches the gateways and coturn through TCP bridges, so TURN
is spoken over TCP (`turn:...?transport=tcp`); coturn relays between its own UDP ports on
the host's 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser

from harness.coturn import Coturn, start_coturn
from harness.processes import Cluster, Process
from tests.e2e.tabs import ONLINE, Tab
from tests.e2e.test_browser import DemoPage, call_timings
from tests.e2e.test_star_browser import HARNESS, LINK_S, StarTab
from tests.netns import LoopbackNamespace

T = TypeVar("T", bound=Tab)

# Every RTCPeerConnection relay-only; what ICE did is kept on `window.turnTest`.
# palava-client 2.2.1 gives TURN credentials only to the peers it finds in joined_room: a
# peer that arrives later (new_peer) gets a connection with no TURN server at all, which
# relay-only leaves without a single candidate. So a configuration without a credentialed
# TURN entry is given the one of the page's own joined_room (the service's URL and
# credentials, untouched); StarSession needs none of this (its ice_servers come whole).
RELAY_ONLY = """(() => {
  const turn = window.turnTest = { configs: [], candidates: [], errors: [], pcs: [],
                                   iceServers: null };
  const NativeSocket = window.WebSocket;
  window.WebSocket = class extends NativeSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        try {
          const frame = JSON.parse(event.data);
          if (frame.event === 'joined_room' && Array.isArray(frame.ice_servers)) {
            turn.iceServers = frame.ice_servers;
          }
        } catch (error) { /* not JSON */ }
      });
    }
  };
  const isTurn = (s) => [s.urls].flat().some((url) => /^turns?:/.test(url));
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(config, ...rest) {
      const given = turn.iceServers && turn.iceServers.find((s) => isTurn(s));
      const servers = ((config && config.iceServers) || []).filter((s) => !isTurn(s));
      const own = ((config && config.iceServers) || []).filter((s) => isTurn(s));
      servers.push(...(own.some((s) => s.username) || !given ? own : [given]));
      const relayed = { ...(config || {}), iceServers: servers, iceTransportPolicy: 'relay' };
      super(relayed, ...rest);
      turn.configs.push(JSON.parse(JSON.stringify(relayed)));
      turn.pcs.push(this);
      this.addEventListener('icecandidate', (e) => {
        if (e.candidate && e.candidate.candidate) turn.candidates.push(e.candidate.candidate);
      });
      this.addEventListener('icecandidateerror', (e) => turn.errors.push(
        { url: e.url, code: e.errorCode, text: e.errorText }));
    }
  };
})();"""

# The candidate pairs the page's connected RTCPeerConnections use: local and remote type.
SELECTED_PAIRS = """async () => {
  const pairs = [];
  for (const pc of window.turnTest.pcs) {
    if (pc.connectionState !== 'connected') continue;
    const stats = await pc.getStats();
    stats.forEach((report) => {
      if (report.type === 'transport' && report.selectedCandidatePairId) {
        const pair = stats.get(report.selectedCandidatePairId);
        const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
        pairs.push({ local: local.candidateType, localProtocol: local.relayProtocol,
                     remote: remote.candidateType, address: local.address + ':' + local.port });
      }
    });
  }
  return pairs;
}"""

SECRET = secrets.token_hex(16)
# How long the library may take to say that the TURN server refused its credentials (it
# says so on the browser's icecandidateerror: at once).
NEVER_S = 10


@dataclass
class Turn:
    coturn: Coturn
    good: list[int]  # gateways with coturn's secret
    wrong: int  # a gateway with another secret


@pytest.fixture(scope="module")
async def turn(cluster: Cluster, netns: LoopbackNamespace,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Turn]:
    """coturn, two gateways with its secret and one with another, all bridged into the
    browser's namespace."""
    coturn = start_coturn(tmp_path_factory.mktemp("coturn"), SECRET)
    started: list[tuple[Process, int]] = []
    try:
        for secret in (SECRET, SECRET, secrets.token_hex(16)):
            started.append(cluster.start_gateway(SWITCHBOARD_TURN_SECRET=secret,
                                                 SWITCHBOARD_ICE_URLS=coturn.url))
        for port in [coturn.port] + [port for _, port in started]:
            await netns.bridge(port)
        yield Turn(coturn, [started[0][1], started[1][1]], started[2][1])
    finally:
        for process, port in started:
            process.stop()
            cluster.gateways.remove((process, port))
        for port in [coturn.port] + [port for _, port in started]:
            bridge = netns.bridges.pop(port, None)
            if bridge is not None and bridge.server is not None:
                bridge.server.close()
                bridge.cut()
        coturn.stop()


async def relay_only(kind: type[T], browser: Browser, url: str, name: str) -> T:
    """`url` in a context of its own whose every RTCPeerConnection is relay-only."""
    context = await browser.new_context(viewport={"width": 1100, "height": 480})
    await context.add_init_script(ONLINE)
    await context.add_init_script(RELAY_ONLY)
    tab = kind(context, await context.new_page(), name)
    await tab.page.goto(url)
    return tab


async def star(browser: Browser, port: int, room: str, name: str, camera: bool) -> StarTab:
    tab = await relay_only(StarTab, browser, f"http://127.0.0.1:{port}/healthz", name)
    tab.peer_id = await tab.page.evaluate(HARNESS, {
        "room": room, "name": name, "camera": camera, "options": {}})
    return tab


async def only_relayed(tab: Tab) -> list[dict[str, Any]]:
    """The page gathered relay candidates only, and its connected pairs are relay-relay."""
    state = await tab.page.evaluate("JSON.parse(JSON.stringify(window.turnTest))")
    assert state["configs"] and all(c["iceTransportPolicy"] == "relay"
                                    for c in state["configs"])
    types = {c.split(" typ ")[1].split()[0] for c in state["candidates"]}
    assert types == {"relay"}, (tab.name, state["candidates"], state["errors"])
    pairs: list[dict[str, Any]] = await tab.page.evaluate(SELECTED_PAIRS)
    assert pairs and all(p["local"] == "relay" and p["remote"] == "relay" for p in pairs), pairs
    return pairs


async def test_a_mesh_call_connects_through_coturn_only(
        browser: Browser, turn: Turn, room: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = turn.coturn.allocations()
    ann = await relay_only(DemoPage, browser, demo_url(turn.good[0], room, "Ann"), "Ann")
    bob: DemoPage | None = None
    try:
        ann_id = await ann.joined()
        bob = await relay_only(DemoPage, browser, demo_url(turn.good[1], room, "Bob"), "Bob")
        bob_id = await bob.joined()
        await ann.in_call_with(bob_id)
        await bob.in_call_with(ann_id)
        # Video keeps flowing through the relay.
        frames = await ann.video_frames(bob_id)
        await ann.wait("([id, n]) => document.getElementById('video-' + id)"
                       ".getVideoPlaybackQuality().totalVideoFrames > n + 15",
                       [bob_id, frames], what="Bob's video playing on")
        pairs = await only_relayed(ann) + await only_relayed(bob)
        timings = call_timings(await ann.state(), await bob.state())
        allocated = turn.coturn.allocations() - before
        assert allocated >= 2, turn.coturn.log()[-3000:]
        with capsys.disabled():
            print("\nA relay-only call through coturn, from the second page's join_room: "
                  + ", ".join(f"{key} {value:.0f} ms" for key, value in timings.items())
                  + f"\ncoturn: {allocated} allocations; selected pairs {pairs}\n"
                  + "\n".join(turn.coturn.allocation_lines()[-allocated:]))
    finally:
        await ann.close()
        if bob is not None:
            await bob.close()


def demo_url(port: int, room: str, name: str) -> str:
    return f"http://127.0.0.1:{port}/demo?{urlencode({'room': room, 'name': name})}"


async def test_a_star_session_connects_through_coturn_only(
        browser: Browser, turn: Turn, room: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = turn.coturn.allocations()
    started = time.monotonic()
    host = await star(browser, turn.good[0], room, "Host", camera=True)
    client = await star(browser, turn.good[1], room, "Client", camera=False)
    try:
        await client.connected_to(host.peer_id)
        await client.plays_video_of(host.peer_id)
        await host.connected_to(client.peer_id)
        await client.send({"text": "through the relay"})
        await host.heard(client.peer_id, {"text": "through the relay"})
        await only_relayed(host)
        await only_relayed(client)
        allocated = turn.coturn.allocations() - before
        assert allocated >= 2
        state = await client.state()
        assert not state["errors"], state["errors"]
        with capsys.disabled():
            print(f"\nStarSession relay-only: client connected "
                  f"{state['connected'][host.peer_id] - state['startedAt']:.0f} ms after its "
                  f"start ({time.monotonic() - started:.1f} s for both pages); "
                  f"coturn: {allocated} allocations")
    finally:
        await asyncio.gather(host.close(), client.close())


async def test_with_another_secret_the_relay_refuses_and_the_link_never_connects(
        browser: Browser, turn: Turn, room: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = turn.coturn.allocations()
    refused_before = len(turn.coturn.refusals())
    host = await star(browser, turn.wrong, room, "Host", camera=True)
    client = await star(browser, turn.wrong, room, "Client", camera=False)
    try:
        # The browser is told 401 by coturn, and no candidate is gathered.
        await client.wait("() => window.turnTest.errors.some(e => e.code === 401)",
                          timeout_s=LINK_S, what="coturn's 401 for the wrong credentials")
        # The library says so at once (peer-link.js), not after its attempts run out (4 x
        # 15 s); the link never connects.
        started = time.monotonic()
        for tab in (host, client):
            await tab.wait("() => window.star.errors.some(e => e.includes("
                           "'refused its credentials (401'))", timeout_s=NEVER_S,
                           what="the library's error for the refused credentials")
        told_s = time.monotonic() - started
        for tab in (host, client):
            state = await tab.state()
            assert not state["connected"], (tab.name, state["events"])
        gave_up = [f"{tab.name}: {e}" for tab in (host, client)
                   for e in (await tab.state())["errors"]]
        turn_state = await client.page.evaluate("JSON.parse(JSON.stringify(window.turnTest))")
        assert not turn_state["candidates"], turn_state["candidates"]
        assert turn.coturn.allocations() == before
        refusals = turn.coturn.refusals()[refused_before:]
        assert refusals
        with capsys.disabled():
            print(f"\nWrong secret: coturn refused {len(refusals)} requests "
                  f"({refusals[0].strip()}); browser icecandidateerror "
                  f"{turn_state['errors'][0]}; "
                  f"the library's error {told_s:.1f} s after the 401: {gave_up}")
    finally:
        await asyncio.gather(host.close(), client.close())
