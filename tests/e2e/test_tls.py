"""A gateway serving TLS itself (SWITCHBOARD_TLS_CERT, SWITCHBOARD_TLS_KEY): `https://` and
`wss://` on its port, with a certificate the test makes, beside the shared cluster's plain
gateways and relays: a peer on `wss://` calls one on `ws://`."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.processes import Cluster, Process, http_get
from tests.peers import TIMEOUT, Peer


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .sign(key, hashes.SHA256()))
    cert, key_file = folder / "gateway.crt", folder / "gateway.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert, key_file


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
