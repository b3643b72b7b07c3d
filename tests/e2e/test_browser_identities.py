"""Identities, the host grant, removals and server messages in the browser (docs/protocol.md,
"Identities and roles", "Removal", "Server messages", "Admin API"), in headless Chromium.

The broadcast demo with join tokens: viewers join first, then a presenter whose token holds
the host grant, and every viewer ends up watching the presenter, each named by the `info`
of its token. Then the app, through the admin API, sends a message, removes one viewer
(whose page says so and never joins again) and closes the room. The mesh demo, removed,
stays out too. StarSession itself shows each member's `user` and `info` (`identityOf`).

These need join tokens and the admin API on every gateway: a cluster of their own (its own
Redis, tests/faults/support.py), bridged into the browser's namespace as the shared one is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser

from gateway.mint_token import mint_token
from harness.processes import Cluster, eventually
from tests.e2e.admin_support import ADMIN_KEY, JOIN_SECRET, Admin, room_path
from tests.e2e.test_browser import DemoPage
from tests.e2e.test_star_browser import LINK_S, BroadcastPage, StarTab
from tests.faults.support import private_cluster
from tests.netns import LoopbackNamespace

# Long enough for a page that would rejoin after its removal to have done so: a resume is
# tried at once, a rejoin after at most 0.6 s (browser/client/backoff.js).
NO_REJOIN_S = 3.0


@pytest.fixture(scope="module")
def app_cluster() -> Iterator[Cluster]:
    with private_cluster(gateways=2, relays=1, SWITCHBOARD_JOIN_SECRET=JOIN_SECRET,
                         SWITCHBOARD_ADMIN_KEY=ADMIN_KEY) as cluster:
        yield cluster


@pytest.fixture(scope="module")
async def ports(app_cluster: Cluster, netns: LoopbackNamespace) -> AsyncIterator[list[int]]:
    """The cluster's gateway ports, reachable from the browser."""
    ports = [port for _, port in app_cluster.gateways]
    for port in ports:
        await netns.bridge(port)
    yield ports


def token(room: str, user: str, name: str, host: bool | None = None) -> str:
    return mint_token(room, 600, JOIN_SECRET, "HS256", sub=user, info={"name": name},
                      host=host)


async def open_broadcast(browser: Browser, port: int, room: str, name: str,
                         join_token: str) -> BroadcastPage:
    """/demo/broadcast?room=..&name=..&token=..: the page joins by itself."""
    query = urlencode({"room": room, "name": name, "token": join_token})
    page = await BroadcastPage.load(browser, f"http://127.0.0.1:{port}/demo/broadcast?{query}",
                                    name)
    await page.wait("() => window.broadcast.state === 'joined'", what="joining")
    return page


async def members(port: int, room: str) -> list[str]:
    """The room's members' peer ids, as the admin API lists them ([] when it has none)."""
    status, answer = await Admin(port).call("GET", room_path(room))
    if status == 404:
        return []
    assert status == 200, answer
    return [member["peer_id"] for member in answer["members"]]


# --- the broadcast demo -----------------------------------------------------------------


async def test_a_presenter_with_the_host_grant_takes_over_from_the_viewers(
        browser: Browser, ports: list[int], room: str) -> None:
    """Viewers first (the first of them presents meanwhile), then the presenter, whose token
    holds the host grant: every viewer watches the presenter, all named by their tokens."""
    ann = await open_broadcast(browser, ports[0], room, "Ann", token(room, "u-ann", "Ann A."))
    bob = await open_broadcast(browser, ports[1], room, "Bob", token(room, "u-bob", "Bob B."))
    pages = [ann, bob]
    try:
        await ann.wait("() => window.broadcast.isHost", what="presenting until the presenter")
        await bob.watching("Ann A.")
        tee = await open_broadcast(browser, ports[1], room, "Tee",
                                   token(room, "teacher-17", "Ms Tee", host=True))
        pages.append(tee)
        state = await tee.state()
        assert (state["isHost"], state["hostChanges"]) == (True, 0), state
        assert (state["user"], state["name"], state["hostName"]) == (
            "teacher-17", "Ms Tee", "Ms Tee")
        for viewer in (ann, bob):
            await viewer.watching("Ms Tee")
            await viewer.wait("""() => window.broadcast.notices.some(
                n => n.kind === 'host' && n.text === 'Ms Tee is presenting now.')""",
                              what="the takeover shown")
            assert await viewer.page.evaluate("""() => {
                const item = document.querySelector('#peer-list li');
                return [item.querySelector('.name').textContent,
                        item.querySelector('.role').textContent];
            }""") == ["Ms Tee", "presenter"]
        await tee.sees_connected(["Ann A.", "Bob B."])
        assert not (await ann.state())["isHost"]  # she presented until then
        await bob.say("Hello Ms Tee")
        await tee.heard("Bob B.", "Hello Ms Tee")
        await ann.heard("Bob B.", "Hello Ms Tee")
    finally:
        await asyncio.gather(*(page.close() for page in pages))


async def test_the_app_messages_removes_a_viewer_and_closes_the_room(
        browser: Browser, ports: list[int], room: str) -> None:
    """Through the admin API: a server message reaches every page; a removed viewer's page
    says so and does not join again (the room keeps one member fewer), the others go on;
    closing the room ends the session on every page."""
    tee = await open_broadcast(browser, ports[0], room, "Tee",
                               token(room, "teacher-17", "Ms Tee", host=True))
    ann = await open_broadcast(browser, ports[1], room, "Ann", token(room, "u-ann", "Ann A."))
    bob = await open_broadcast(browser, ports[0], room, "Bob", token(room, "u-bob", "Bob B."))
    pages = [tee, ann, bob]
    try:
        for viewer in (ann, bob):
            await viewer.watching("Ms Tee")
        bob_id = await bob.peer_id()
        assert sorted(await members(ports[1], room)) == sorted(
            [await page.peer_id() for page in pages])

        status, answer = await Admin(ports[1]).call(
            "POST", room_path(room, "message"), {"data": {"text": "five minutes left"}})
        assert status == 200 and sorted(answer["delivered"]) == sorted(
            [await page.peer_id() for page in pages]), answer
        for page in pages:
            await page.wait("""() => window.broadcast.notices.some(
                n => n.kind === 'server' && n.text === 'From the app: five minutes left')""",
                            what="the server message")

        sockets: list[str] = []
        bob.page.on("websocket", lambda socket: sockets.append(socket.url))
        status, answer = await Admin(ports[1]).call("POST", room_path(room, "remove"),
                                                    {"peer_id": bob_id})
        assert (status, answer) == (200, {"removed": [bob_id]})
        await bob.wait("""() => window.broadcast.state === 'removed'
            && window.broadcast.removed === 'removed'
            && document.getElementById('status').textContent === 'removed by the app'
            && window.broadcast.notices.some(
                n => n.kind === 'removed' && n.text === 'You were removed by the app.')""",
                       what="the removal shown")
        # The presenter's link to Bob ends; Ann watches on.
        await tee.wait("id => !(id in window.broadcast.states)", bob_id, LINK_S,
                       "the link to the removed viewer gone")
        await ann.watching("Ms Tee")
        # Bob's page joins no more: the room keeps two members.
        left = {await tee.peer_id(), await ann.peer_id()}
        await keeps_members(ports[0], room, left)
        assert not sockets, sockets
        assert not [n for n in (await bob.state())["notices"]
                    if n["kind"] in ("resuming", "resumed")]

        status, answer = await Admin(ports[0]).call("POST", room_path(room, "close"))
        assert status == 200 and set(answer["removed"]) == left, answer
        for page in (tee, ann):
            await page.wait("""() => window.broadcast.state === 'removed'
                && window.broadcast.removed === 'closed'
                && document.getElementById('status').textContent === 'the session ended'""",
                            what="the end of the session shown")
        assert await members(ports[0], room) == []
    finally:
        await asyncio.gather(*(page.close() for page in pages))


async def keeps_members(port: int, room: str, expected: set[str]) -> None:
    """The room's members become `expected` and stay so for `NO_REJOIN_S`: a removed page
    that joined again would be seen there as a new member."""

    async def members_are_expected() -> bool:
        return set(await members(port, room)) == expected

    await eventually(members_are_expected, 10, f"the members to be {expected}")
    deadline = time.monotonic() + NO_REJOIN_S
    while time.monotonic() < deadline:
        assert set(await members(port, room)) == expected
        await asyncio.sleep(0.25)  # an observation window, not a wait for something


async def test_the_mesh_demo_stays_out_after_its_removal(
        browser: Browser, ports: list[int], room: str) -> None:
    """/demo (palava-client on the library's ResumableSocket): removed, the page says so
    and neither resumes nor joins again, as it would after losing the connection."""
    eve = await DemoPage.open(browser, ports[0], room, "Eve", token=token(room, "u-eve", "Eve"))
    fay = await DemoPage.open(browser, ports[1], room, "Fay", token=token(room, "u-fay", "Fay"))
    try:
        eve_id, fay_id = await eve.joined(), await fay.joined()
        await fay.sees(eve_id, "Eve")
        status, answer = await Admin(ports[1]).call("POST", room_path(room, "remove"),
                                                    {"peer_id": eve_id})
        assert (status, answer) == (200, {"removed": [eve_id]})
        await eve.wait("""() => demo.state === 'removed' && demo.notices.some(
            n => n.kind === 'removed' && n.text === 'You were removed by the app.')""",
                       what="the removal shown")
        await fay.no_longer_sees(eve_id)
        await keeps_members(ports[0], room, {fay_id})
        state = await eve.state()
        assert (state["reconnects"], state["resumes"]) == (0, 0), state
    finally:
        await asyncio.gather(eve.close(), fay.close())


# --- StarSession itself ---------------------------------------------------------------


async def test_star_session_shows_who_each_member_is(
        browser: Browser, ports: list[int], room: str) -> None:
    """`identityOf` gives `{user, info}` from the tokens, for the others and for oneself; a
    member whose token had none has neither, and an unknown peer has no identity."""
    client = await StarTab.start(browser, ports[0], room, "Cy",
                                 token=token(room, "u-cy", "Cy C."))
    plain = await StarTab.start(browser, ports[1], room, "Dee",
                                token=mint_token(room, 600, JOIN_SECRET, "HS256"))
    host = await StarTab.start(browser, ports[1], room, "Tee",
                               token=token(room, "teacher-17", "Ms Tee", host=True))
    tabs = [client, plain, host]
    try:
        teacher = {"user": "teacher-17", "info": {"name": "Ms Tee"}}
        for tab in (client, plain):
            await tab.wait("id => window.star.hostId === id", host.peer_id,
                           what="the presenter taking over")
        identity = "id => window.session.identityOf(id) ?? 'none'"
        assert await host.page.evaluate(identity, host.peer_id) == teacher
        assert await host.page.evaluate(identity, client.peer_id) == {
            "user": "u-cy", "info": {"name": "Cy C."}}
        assert await host.page.evaluate(identity, plain.peer_id) == {}
        assert await client.page.evaluate(identity, host.peer_id) == teacher
        assert await client.page.evaluate(identity, client.peer_id) == {
            "user": "u-cy", "info": {"name": "Cy C."}}
        # A client sees the host alone: the other client is unknown to it.
        assert await client.page.evaluate(identity, plain.peer_id) == "none"
        assert await plain.page.evaluate(identity, plain.peer_id) == {}
        assert await host.page.evaluate("id => window.session.statusOf(id)",
                                        client.peer_id) == {"name": "Cy"}
    finally:
        await asyncio.gather(*(tab.close() for tab in tabs))
