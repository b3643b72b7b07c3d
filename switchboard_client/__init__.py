"""A small asyncio client for Switchboard (or any palava signaling server).

    async with await SignalingClient.connect("ws://127.0.0.1:8080/") as client:
        joined = await client.join("my-room", name="Ann")
        await client.offer(peer_id, {"type": "offer", "sdp": "..."})
        async for event in client:
            ...

Server frames arrive as typed events (`shared.frames` structs, plus `PeerMessage` for
what other peers send); requests are typed methods.
"""

from shared.frames import PEER_EVENTS
from switchboard_client.client import ResumeFailed, SignalingClient, SignalingError
from switchboard_client.events import PeerMessage, ServerEvent, decode_event, json_of

__all__ = [
    "PEER_EVENTS",
    "PeerMessage",
    "ResumeFailed",
    "ServerEvent",
    "SignalingClient",
    "SignalingError",
    "decode_event",
    "json_of",
]
