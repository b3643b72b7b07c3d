"""Identities and the host grant in the browser (docs/protocol.md, "Identities and roles"),
in headless Chromium.

The broadcast demo with join tokens: viewers join first, then a presenter whose token holds
the host grant, and every viewer ends up watching the presenter, each named by the `info`
of its token. StarSession itself shows each member's `user` and `info` (`identityOf`).

These need join tokens on every gateway: a cluster of their own (its own Redis,
tests/faults/support.py), bridged into the browser's namespace as the shared one is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser

from gateway.mint_token import mint_token
from harness.processes import Cluster
from tests.e2e.test_star_browser import BroadcastPage, StarTab
from tests.faults.support import private_cluster
from tests.netns import LoopbackNamespace

JOIN_SECRET = "a-join-secret-for-the-identity-tests-32b"


@pytest.fixture(scope="module")
def app_cluster() -> Iterator[Cluster]:
    with private_cluster(gateways=2, relays=1, SWITCHBOARD_JOIN_SECRET=JOIN_SECRET) as cluster:
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
