"""Behind nginx (Debian's), configured as deploy/nginx.conf gives it: TLS ends at the proxy,
two gateways behind it (of this module's own, on the shared cluster's Redis and relays,
trusting the proxy's X-Forwarded-For). Clients reach it from 127.0.0.2, so that the
address the proxy passes on is not the proxy's own: the gateways log the client's."""

from __future__ import annotations

import re
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets
from playwright.async_api import Browser

from harness.nginx import start_nginx
from harness.processes import Cluster, Process
from tests.e2e.certificates import self_signed
from tests.e2e.test_browser import secure_demo_call
from tests.netns import LoopbackNamespace
from tests.peers import TIMEOUT, Peer
from tests.resume_support import ResumablePeer

CLIENT = "127.0.0.2"  # loopback too, but not the proxy's address


@dataclass
class Proxied:
    nginx: Process
    port: int
    gateways: list[tuple[Process, int]]
    trusted: ssl.SSLContext

    @property
    def url(self) -> str:
        return f"wss://127.0.0.1:{self.port}/"

    async def connect(self) -> Peer:
        return Peer(await websockets.connect(self.url, ssl=self.trusted,
                                             open_timeout=TIMEOUT, local_addr=(CLIENT, 0)))

    def gateway_of(self, socket_id: str) -> int:
        """Which of the two gateways logged the socket as opened (its index)."""
        opened = [i for i, (process, _) in enumerate(self.gateways)
                  if f"socket {socket_id} opened" in process.log()]
        assert len(opened) == 1, opened
        return opened[0]


@pytest.fixture(scope="module")
def proxied(cluster: Cluster) -> Iterator[Proxied]:
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-nginx-"))
    gateways = [cluster.start_gateway(SWITCHBOARD_TRUSTED_PROXIES="127.0.0.1")
                for _ in range(2)]
    cert, key = self_signed(workdir)
    nginx, port = start_nginx(workdir, [port for _, port in gateways], cert, key)
    try:
        yield Proxied(nginx, port, gateways, ssl.create_default_context(cafile=str(cert)))
    finally:
        nginx.stop()
        for process, port in gateways:
            process.stop()
            cluster.gateways.remove((process, port))
        shutil.rmtree(workdir, ignore_errors=True)


async def test_a_call_through_the_proxy_logs_each_clients_own_address(
        proxied: Proxied, room: str) -> None:
    first, second = await proxied.connect(), await proxied.connect()
    try:
        await first.join(room)
        await second.join(room)
        await first.expect("new_peer")
        await second.send(event="send_to_peer", peer_id=first.id,
                          data={"event": "offer", "sdp": "v=0"})
        assert (await first.expect("offer"))["sender_id"] == second.id
        # Round robin: one socket on each gateway, each logged with the client's address.
        assert {proxied.gateway_of(first.id or ""), proxied.gateway_of(second.id or "")} \
            == {0, 1}
        for peer in (first, second):
            process = proxied.gateways[proxied.gateway_of(peer.id or "")][0]
            assert re.search(rf"socket {peer.id} opened by {re.escape(CLIENT)}\b",
                             process.log())
    finally:
        await first.close()
        await second.close()


async def test_a_forwarded_for_from_an_untrusted_peer_is_ignored(
        proxied: Proxied, room: str) -> None:
    _, port = proxied.gateways[0]
    peer = Peer(await websockets.connect(
        f"ws://127.0.0.1:{port}/", open_timeout=TIMEOUT, local_addr=(CLIENT, 0),
        additional_headers={"X-Forwarded-For": "198.51.100.66"}))
    try:
        await peer.join(room)
        log = proxied.gateways[0][0].log()
        assert f"socket {peer.id} opened by {CLIENT}" in log
        assert "198.51.100.66" not in log
    finally:
        await peer.close()


async def test_a_resume_through_the_proxy_lands_on_the_other_gateway(
        proxied: Proxied, room: str) -> None:
    staying = await proxied.connect()
    await staying.join(room)
    moving = await ResumablePeer.join(proxied.url, room, ssl=proxied.trusted,
                                      local_addr=(CLIENT, 0))
    try:
        before = proxied.gateway_of(moving.id)
        await staying.expect("new_peer")
        opened = [process.log().count(" opened by ") for process, _ in proxied.gateways]
        moving.drop()
        await staying.send(event="send_to_peer", peer_id=moving.id,
                           data={"event": "message", "n": 1})
        joined = await moving.resume(proxied.url, ssl=proxied.trusted, local_addr=(CLIENT, 0))
        assert joined["own_id"] == moving.id
        assert (await moving.expect("message"))["n"] == 1
        # Round robin sent the new socket to the other gateway, which took the peer over.
        now = [process.log().count(" opened by ") for process, _ in proxied.gateways]
        assert [b - a for a, b in zip(opened, now, strict=True)] == [
            int(i != before) for i in range(2)]
    finally:
        await moving.close()
        await staying.close()


@pytest.fixture
async def bridged(proxied: Proxied, netns: LoopbackNamespace) -> AsyncIterator[int]:
    """The proxy's port, reachable from the browser's namespace."""
    await netns.bridge(proxied.port)
    yield proxied.port


async def test_the_demo_call_over_https_through_the_proxy(
        browser: Browser, bridged: int, room: str) -> None:
    await secure_demo_call(browser, bridged, room)
