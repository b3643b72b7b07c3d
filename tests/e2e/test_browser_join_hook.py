"""The join hook in the browser (docs/protocol.md, "Join hook"): the mesh demo (/demo,
real palava-client) joins through a gateway that asks the app before each join, and the
app admits by its own session cookie.

The app is a receiver of the test's own (tests/e2e/hook_receiver.py: a real HTTP server
that checks every signature). The cookie is set in the browser for the gateway's host, as
the app's login would have left it; Chromium sends it with the WebSocket upgrade and the
gateway forwards it in `headers.cookie`. A page with a known session gets in, a page
without one is refused with `not allowed` and says so, and a second signed-in page joins
and the two call.

The gateway is one of the test's own on the shared cluster, bridged into the browser's
loopback namespace (tests/netns.py); the receiver listens on the host's loopback, where
the gateway runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser

from harness.processes import Cluster
from tests.e2e.hook_receiver import SECRET, HookReceiver
from tests.e2e.test_browser import DemoPage
from tests.netns import LoopbackNamespace

COOKIE = "app_session"
# The app's sessions: cookie value -> who it admits (`user`, `info`).
SESSIONS = {"alice-session": ("alice", {"name": "Alice"}),
            "bob-session": ("bob", {"name": "Bob"})}


async def by_session_cookie(request: dict[str, Any]) -> tuple[int, Any]:
    """The app's answer: allowed, and who the peer is, only for a known session cookie."""
    morsel = SimpleCookie(request["headers"].get("cookie", "")).get(COOKIE)
    if morsel is None or morsel.value not in SESSIONS:
        return 200, {"allow": False}
    user, info = SESSIONS[morsel.value]
    return 200, {"allow": True, "user": user, "info": info}


@pytest.fixture
async def receiver() -> AsyncIterator[HookReceiver]:
    async with HookReceiver(answer=by_session_cookie) as started:
        yield started


@pytest.fixture
async def hooked_port(cluster: Cluster, netns: LoopbackNamespace,
                      receiver: HookReceiver) -> AsyncIterator[int]:
    """A gateway with the join hook, reachable from the browser; its log must not hold
    the sessions."""
    process, port = cluster.start_gateway(
        SWITCHBOARD_JOIN_HOOK_URL=receiver.url, SWITCHBOARD_WEBHOOK_SECRET=SECRET,
        SWITCHBOARD_JOIN_HOOK_HEADERS="cookie",
        SWITCHBOARD_SHUTDOWN_SECONDS="0")  # its pages are closed by then: nobody to warn
    try:
        await netns.bridge(port)
        yield port
    finally:
        # In a thread: the bridge, on this loop, must carry the pages' last closes meanwhile
        # (blocked, it would leave the gateway waiting 5 s for sockets that are gone).
        assert await asyncio.to_thread(process.stop) == 0
        cluster.gateways.remove((process, port))
    log = process.log()
    assert not [session for session in SESSIONS if session in log]


async def signed_in(browser: Browser, port: int, room: str, name: str,
                    session: str) -> DemoPage:
    """The demo page for `room`, in a browser that holds the app's session cookie for the
    gateway's host; joined as `name` through the page's form, as a user would."""
    query = urlencode({"room": room})
    page = await DemoPage.load(browser, f"http://127.0.0.1:{port}/demo?{query}", name)
    await page.context.add_cookies([{"name": COOKIE, "value": session,
                                     "url": f"http://127.0.0.1:{port}"}])
    await page.wait("() => window.demo && window.demo.state === 'idle'",
                    what="the page ready to join")
    await page.page.fill("#name", name)
    await page.page.click("#join")
    return page


async def test_the_app_admits_signed_in_pages_by_their_cookie_and_refuses_the_others(
        browser: Browser, hooked_port: int, receiver: HookReceiver, room: str) -> None:
    alice = await signed_in(browser, hooked_port, room, "Alice", "alice-session")
    pages = [alice]
    try:
        alice_id = await alice.joined()
        (asked,) = receiver.received
        assert asked.body["room"] == room and asked.body["peer_id"] == alice_id
        assert asked.body["status"]["name"] == "Alice"
        assert asked.body["origin"] == f"http://127.0.0.1:{hooked_port}"
        assert asked.body["headers"] == {"cookie": f"{COOKIE}=alice-session"}

        # No session cookie: the app says no, and the page shows the server's refusal.
        stranger = await DemoPage.open(browser, hooked_port, room, "Mallory")
        pages.append(stranger)
        await stranger.wait("""() => demo.state === 'idle' && demo.notices.some(
                               n => n.kind === 'error' && n.text.includes('not allowed'))""",
                            what="the server's 'not allowed'")
        assert "not allowed" in await stranger.page.inner_text("#notices")
        assert await stranger.page.inner_text("#status") == "not connected"
        assert len(receiver.received) == 2
        assert receiver.received[1].body["headers"] == {}

        bob = await signed_in(browser, hooked_port, room, "Bob", "bob-session")
        pages.append(bob)
        bob_id = await bob.joined()
        assert receiver.received[2].body["peer_id"] == bob_id
        assert receiver.received[2].body["headers"] == {"cookie": f"{COOKIE}=bob-session"}
        await alice.in_call_with(bob_id)
        await bob.in_call_with(alice_id)
        await alice.sees(bob_id, "Bob")
        await bob.sees(alice_id, "Alice")
        # The refused page never was a member.
        assert set((await alice.state())["peers"]) == {bob_id}
        assert set((await bob.state())["peers"]) == {alice_id}
        assert receiver.bad_signatures == 0 and len(receiver.received) == 3
    finally:
        for page in pages:
            await page.close()
