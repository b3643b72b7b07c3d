from tests.peers import Peer


async def test_two_gateways_share_a_room(peers: list[Peer], room: str) -> None:
    a, b = peers[0], peers[1]
    await a.join(room, {"name": "Ann", "user_agent": "chrome"})
    joined = await b.join(room)
    assert joined["peers"] == [{"peer_id": a.id, "status": {"name": "Ann", "user_agent": "chrome"}}]
    assert (await a.expect("new_peer")) == {"event": "new_peer", "peer_id": b.id, "status": {}}
