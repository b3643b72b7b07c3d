"""switchboard_client under the app's control (docs/protocol.md, "Identities and roles",
"Removal", "Server messages"): its identity from the token, server messages as events, and a
removal that ends the connection for good."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import websockets

from harness.processes import Cluster
from shared.frames import NewPeer, Removed, ServerMessage
from switchboard_client import SignalingClient, json_of
from tests.e2e.admin_support import ADMIN_KEY, JOIN_SECRET, Admin, minted, room_path


@pytest.fixture(scope="module")
def gateway(cluster: Cluster) -> Iterator[int]:
    """A gateway with the admin API and join tokens, on the shared cluster's relays."""
    process, port = cluster.start_gateway(SWITCHBOARD_ADMIN_KEY=ADMIN_KEY,
                                          SWITCHBOARD_JOIN_SECRET=JOIN_SECRET)
    yield port
    assert process.stop() == 0
    cluster.gateways.remove((process, port))


async def test_identity_server_messages_and_a_removal_that_is_never_resumed(
        gateway: int, room: str) -> None:
    url = f"ws://127.0.0.1:{gateway}/"
    admin = Admin(gateway)
    async with await SignalingClient.connect(url) as a, \
            await SignalingClient.connect(url) as b:
        joined = await a.join(room, resumable=True,
                              token=minted(room, sub="ann", info={"name": "Ann"}))
        assert (a.user, a.info) == ("ann", {"name": "Ann"}) and a.is_host
        assert (joined.user, json_of(joined.info)) == ("ann", {"name": "Ann"})
        await b.join(room, token=minted(room))
        assert (b.user, b.info) == (None, None) and not b.is_host
        await a.wait_for(NewPeer)
        assert (await admin.call("POST", room_path(room, "message"),
                                 {"data": {"text": "hi"}, "peer_id": a.own_id}))[0] == 200
        message = await a.wait_for(ServerMessage)
        assert json_of(message.data) == {"text": "hi"}
        assert (await admin.call("POST", room_path(room, "remove"), {"user": "ann"}))[0] == 200
        removed = await a.wait_for(Removed)
        assert removed.reason == "removed" and a.removed == "removed"
        # The socket is closed with 4003, and the client does not resume it.
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await a.next_event(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
        assert a.resumes == 0 and a.resume_token is None
