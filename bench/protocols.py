"""The two protocol adapters: what a load-generating client sends and how it reads replies.

Both carry the same ICE-candidate-like payload (about 300 bytes a frame) with a sequence
number and a send time (`time.monotonic_ns`, CLOCK_MONOTONIC: one clock for every process
of this machine), so that the receiver can check order and loss and measure latency.

- Switchboard (palava protocol, docs/protocol.md): `join_room`, then `send_to_peer`
  with `data.event = "ice_candidate"`; the receiver gets `data` with `sender_id` added.
- PeerJS server (npm `peer`): the client picks its id and token in the URL and is in once
  `{"type":"OPEN"}` arrives (there are no rooms); `{"type":"CANDIDATE","dst":ID,"payload":
  {...}}` reaches ID as the same object with `"src"` added. Clients send `{"type":
  "HEARTBEAT"}` every 5 s, as the peerjs browser client does.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

# One candidate as browsers report it (RTCIceCandidate.toJSON()).
_CANDIDATE = (b'{"candidate":"candidate:842163049 1 udp 1677729535 192.0.2.17 49203 typ srflx '
              b'raddr 10.0.0.5 rport 49203 generation 0 ufrag Xy7b","sdpMid":"0",'
              b'"sdpMLineIndex":0}')


class Receiver(Protocol):
    """What an adapter reports a decoded frame to (bench.loadgen.Client)."""

    client_id: str

    def on_candidate(self, seq: int, sent_ns: int) -> None: ...
    def on_joined(self, own_id: str, peers: list[str]) -> None: ...
    def on_new_peer(self, peer_id: str) -> None: ...
    def on_error(self, text: str) -> None: ...


class Adapter(Protocol):
    name: str
    # Sent by every client every HEARTBEAT_SECONDS, or None.
    heartbeat: bytes | None
    # Rooms exist (a join is a frame and peers learn of each other), or not (PeerJS).
    has_rooms: bool

    def new_client_id(self) -> str: ...
    def url(self, port: int, client_id: str) -> str: ...
    def join_frame(self, room: str, topology: str | None = None,
                   resumable: bool = False, token: str = "") -> bytes | None: ...
    def candidate_template(self, dst_id: str) -> bytes: ...
    def dispatch(self, client: Receiver, msg: dict[str, Any]) -> None: ...


HEARTBEAT_SECONDS = 5


class Switchboard:
    name = "switchboard"
    heartbeat: bytes | None = None
    has_rooms = True

    def new_client_id(self) -> str:
        return ""  # the server names its peers (joined_room.own_id)

    def url(self, port: int, client_id: str) -> str:
        return f"ws://127.0.0.1:{port}/"

    def join_frame(self, room: str, topology: str | None = None,
                   resumable: bool = False, token: str = "") -> bytes | None:
        extra = b"" if topology is None else b',"topology":"%s"' % topology.encode()
        if resumable:  # every frame to it is then numbered and kept (docs/protocol.md, "Resume")
            extra += b',"resumable":true'
        if token:  # a JWT: base64url and dots, nothing to escape (docs/protocol.md, "Join tokens")
            extra += b',"token":"%s"' % token.encode()
        return b'{"event":"join_room","room_id":"%s"%s}' % (room.encode(), extra)

    def candidate_template(self, dst_id: str) -> bytes:
        """A send_to_peer frame with `%d` for the sequence number and the send time."""
        return (b'{"event":"send_to_peer","peer_id":"' + dst_id.encode() +
                b'","data":{"event":"ice_candidate","seq":%d,"t":%d,"candidate":' +
                _CANDIDATE + b'}}')

    def dispatch(self, client: Receiver, msg: dict[str, Any]) -> None:
        event = msg.get("event")
        if event == "ice_candidate":
            client.on_candidate(msg["seq"], msg["t"])
        elif event == "new_peer":
            client.on_new_peer(msg["peer_id"])
        elif event == "joined_room":
            client.on_joined(msg["own_id"], [peer["peer_id"] for peer in msg["peers"]])
        elif event == "error":
            client.on_error(f"error: {msg.get('message')}")
        # pong, peer_left, peer_updated_status, host_changed: nothing to count


class PeerJS:
    name = "peerjs"
    heartbeat: bytes | None = b'{"type":"HEARTBEAT"}'
    has_rooms = False

    def new_client_id(self) -> str:
        return str(uuid.uuid4())  # as long as a Switchboard peer id: frames of equal size

    def url(self, port: int, client_id: str) -> str:
        return (f"ws://127.0.0.1:{port}/myapp/peerjs?key=peerjs&id={client_id}"
                f"&token={client_id[:8]}")

    def join_frame(self, room: str, topology: str | None = None,
                   resumable: bool = False, token: str = "") -> bytes | None:
        return None  # a client is in once OPEN arrives (PeerJS has no rooms)

    def candidate_template(self, dst_id: str) -> bytes:
        # The peerjs client's candidate message: {candidate, type, connectionId}.
        return (b'{"type":"CANDIDATE","dst":"' + dst_id.encode() +
                b'","payload":{"type":"data","connectionId":"dc_8w3k2j5x0q","seq":%d,"t":%d,'
                b'"candidate":' + _CANDIDATE + b'}}')

    def dispatch(self, client: Receiver, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "CANDIDATE":
            payload = msg["payload"]
            client.on_candidate(payload["seq"], payload["t"])
        elif kind == "OPEN":
            client.on_joined(client.client_id, [])
        elif kind in ("ERROR", "ID-TAKEN", "EXPIRE", "LEAVE"):
            client.on_error(f"{kind}: {msg.get('payload')}")


ADAPTERS: dict[str, Adapter] = {"switchboard": Switchboard(), "peerjs": PeerJS()}
