"""The browser library's resume when an attempt's answer is lost (docs/protocol.md,
"Resume"): its ResumableSocket, in Chromium, against a WebSocket server of the test's own
that answers as the service does when a gateway dies between the relay's commit of a
resume and the client's read of the answer. Only such a server can place that death
between the two; the real service's side of it is tests/faults/test_resume_faults.py.

The service then takes the token that attempt spent once more, but only once it has seen
that attempt's socket go (its gateway's heartbeat lapses): until then it answers
`cannot resume`. So the library tries again within its resume window after an attempt
lost its answer, and gives up at once on a `cannot resume` otherwise."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser
from websockets.asyncio.server import ServerConnection, serve

from harness.processes import Cluster, free_port
from tests.e2e.tabs import Tab
from tests.netns import LoopbackNamespace

CANNOT_RESUME = {"event": "error", "message": "cannot resume", "description": "cannot resume",
                 "received_msg": "resume"}


class Script:
    """What the server does with each socket, in turn: `join` answers the join and drops
    the socket; `lose` takes the resume and drops the socket unanswered (its gateway died);
    `refuse` answers `cannot resume`; `resume` answers the resume."""

    def __init__(self, steps: list[str]) -> None:
        self.steps = steps
        self.received: list[dict[str, Any]] = []

    async def serve(self, socket: ServerConnection) -> None:
        step = self.steps.pop(0) if self.steps else "refuse"
        frame = json.loads(await socket.recv())
        self.received.append(frame)
        if step == "join":
            await socket.send(json.dumps({"event": "joined_room", "own_id": "p-1", "peers": [],
                                          "resume_token": "t-1"}))
            await socket.send(json.dumps({"event": "message", "frame_seq": 1}))
        elif step == "refuse":
            await socket.send(json.dumps(CANNOT_RESUME))
            await socket.wait_closed()
            return
        elif step == "resume":
            await socket.send(json.dumps({"event": "joined_room", "own_id": "p-1", "peers": [],
                                          "resumed": True, "resume_token": "t-2"}))
            await socket.wait_closed()
            return
        socket.transport.abort()  # join, lose: the network (or the gateway) goes


@pytest.fixture
async def server(netns: LoopbackNamespace) -> AsyncIterator[tuple[int, Script]]:
    script = Script([])
    port = free_port()
    async with serve(script.serve, "127.0.0.1", port):
        await netns.bridge(port)
        yield port, script


async def socket_page(browser: Browser, cluster: Cluster, server_port: int) -> Tab:
    """A page of a gateway's origin with a ResumableSocket to the test's server, recording
    what the library tells the code above."""
    tab = await Tab.load(browser, f"http://127.0.0.1:{cluster.gateways[0][1]}/healthz",
                         "resume-retry")
    await tab.page.evaluate("""async (url) => {
        const { ResumableSocket } = await import('/client/resumable-socket.js');
        window.seen = [];
        const socket = new ResumableSocket(url, { resumeWithinMs: 5000 });
        for (const type of ['resuming', 'resumed']) {
            socket.addEventListener(type, () => window.seen.push(type));
        }
        socket.addEventListener('close', (e) => window.seen.push('close:' + e.reason));
        socket.addEventListener('open', () => socket.send(JSON.stringify(
            { event: 'join_room', room_id: 'r' })));
        window.socket = socket;
    }""", f"ws://127.0.0.1:{server_port}/")
    return tab


async def test_an_attempt_whose_answer_was_lost_is_tried_again_past_refusals(
        browser: Browser, cluster: Cluster, server: tuple[int, Script]) -> None:
    port, script = server
    script.steps += ["join", "lose", "refuse", "refuse", "resume"]
    tab = await socket_page(browser, cluster, port)
    try:
        await tab.wait("() => window.seen.includes('resumed') || window.seen.some("
                       "s => s.startsWith('close'))", what="the resume's outcome")
        assert await tab.page.evaluate("window.seen") == ["resuming", "resumed"]
        assert await tab.page.evaluate("window.socket.readyState") == 1
        resumes = [f for f in script.received if f["event"] == "resume"]
        assert [(f["resume_token"], f["last_frame_seq"]) for f in resumes] == [("t-1", 1)] * 4
    finally:
        await tab.close()


async def test_a_refusal_without_a_lost_answer_ends_the_resume_at_once(
        browser: Browser, cluster: Cluster, server: tuple[int, Script]) -> None:
    port, script = server
    script.steps += ["join", "refuse", "resume"]
    tab = await socket_page(browser, cluster, port)
    try:
        await tab.wait("() => window.seen.some(s => s.startsWith('close'))",
                       what="the socket closed to the code above")
        assert await tab.page.evaluate("window.seen") == ["resuming", "close:cannot resume"]
        assert [f["event"] for f in script.received] == ["join_room", "resume"]
    finally:
        await tab.close()
