"""A gateway serving TLS itself (SWITCHBOARD_TLS_CERT, SWITCHBOARD_TLS_KEY): `https://` and
`wss://` on its port, with a certificate the test makes, beside the shared cluster's plain
gateways and relays: a peer on `wss://` calls one on `ws://`, and the demo page calls over
https:// in Chromium."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import websockets
from playwright.async_api import Browser

from harness.processes import Cluster, Process, http_get
from tests.e2e.certificates import self_signed
from tests.e2e.test_browser import secure_demo_call
from tests.netns import LoopbackNamespace
from tests.peers import TIMEOUT, Peer


@pytest.fixture(scope="module")
def tls_gateway(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[int, ssl.SSLContext]]:
    """A gateway with a certificate of its own, and a client context that trusts it."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    process, port = cluster.start_gateway(SWITCHBOARD_TLS_CERT=str(cert),
                                          SWITCHBOARD_TLS_KEY=str(key))
    yield port, ssl.create_default_context(cafile=str(cert))
    stop(cluster, process, port)


def stop(cluster: Cluster, process: Process, port: int) -> None:
    assert process.stop() == 0
    cluster.gateways.remove((process, port))


def test_the_gateway_answers_https_and_no_plain_http(
        tls_gateway: tuple[int, ssl.SSLContext]) -> None:
    port, trusted = tls_gateway
    assert http_get(port, "/healthz", trusted)[0] == 200
    assert http_get(port, "/client/switchboard.js", trusted)[0] == 200
    with pytest.raises(OSError):
        http_get(port, "/healthz")


async def test_a_peer_on_wss_calls_a_peer_on_plain_ws(
        cluster: Cluster, tls_gateway: tuple[int, ssl.SSLContext], room: str) -> None:
    port, trusted = tls_gateway
    secure = Peer(await websockets.connect(f"wss://127.0.0.1:{port}/", ssl=trusted,
                                           open_timeout=TIMEOUT))
    plain = await Peer.connect(cluster.url(0))
    try:
        await secure.join(room)
        joined = await plain.join(room)
        assert [p["peer_id"] for p in joined["peers"]] == [secure.id]
        await secure.expect("new_peer")
        await plain.send(event="send_to_peer", peer_id=secure.id,
                         data={"event": "offer", "sdp": "v=0"})
        assert await secure.expect("offer") == {"event": "offer", "sdp": "v=0",
                                                 "sender_id": plain.id}
        await secure.send(event="send_to_peer", peer_id=plain.id,
                          data={"event": "answer", "sdp": "v=0"})
        assert (await plain.expect("answer"))["sender_id"] == secure.id
    finally:
        await secure.close()
        await plain.close()


async def test_a_client_that_does_not_trust_the_certificate_is_not_let_in(
        tls_gateway: tuple[int, ssl.SSLContext]) -> None:
    port, _ = tls_gateway
    with pytest.raises(ssl.SSLCertVerificationError):
        await websockets.connect(f"wss://127.0.0.1:{port}/", open_timeout=TIMEOUT)


async def test_the_demo_call_over_https_on_the_gateways_own_certificate(
        browser: Browser, netns: LoopbackNamespace, tls_gateway: tuple[int, ssl.SSLContext],
        room: str) -> None:
    port, _ = tls_gateway
    await netns.bridge(port)
    await secure_demo_call(browser, port, room)
