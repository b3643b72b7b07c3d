"""The protocol adapters: what a load-generating client sends and how it reads replies.

Both carry the same ICE-candidate-like payload (about 300 bytes a frame) with a sequence
number and a send time (`time.monotonic_ns`, CLOCK_MONOTONIC: one clock for every process
of this machine), so that the receiver can check order and loss and measure latency.

- Switchboard (palava protocol, docs/protocol.md): `join_room`, then `send_to_peer`
  with `data.event = "ice_candidate"`; the receiver gets `data` with `sender_id` added.
- PeerJS server (npm `peer`): the client picks its id and token in the URL and is in once
  `{"type":"OPEN"}` arrives (there are no rooms); `{"type":"CANDIDATE","dst":ID,"payload":
  {...}}` reaches ID as the same object with `"src"` added. Clients send `{"type":
  "HEARTBEAT"}` every 5 s, as the peerjs browser client does.
- Socket.IO (bench/socketio/server.js, v4, over a WebSocket: Engine.IO 4 with
  `transport=websocket`, no polling). Engine.IO packets are a digit and a body: `0` open,
  `2` ping (answered `3`), `4` message; a message carries a Socket.IO packet: `0` connect
  (answered `0{"sid":...}`: the socket id that others address), `2` event
  (`2["name",...]`, an ack id before the `[` when one is wanted), `3` ack. So a client
  sends `40`, then once connected `421["join",ROOM]` (acked `431[...]`), and signals with
  `42["signal",{"to":ID,"data":{...}}]`; ID gets `42["signal",{"from":...,"data":{...}}]`.
  Peers learn no ids from a join: the load generator hands them out, as for PeerJS.
"""

from __future__ import annotations

import uuid
from typing import Protocol

import orjson

# One candidate as browsers report it (RTCIceCandidate.toJSON()).
_CANDIDATE = (b'{"candidate":"candidate:842163049 1 udp 1677729535 192.0.2.17 49203 typ srflx '
              b'raddr 10.0.0.5 rport 49203 generation 0 ufrag Xy7b","sdpMid":"0",'
              b'"sdpMLineIndex":0}')


class Receiver(Protocol):
    """What an adapter reports a decoded frame to (bench.loadgen.Client)."""

    client_id: str
    own_id: str
    room: str  # the room it joins (Socket.IO: sent once connected)

    def send(self, data: bytes) -> None: ...

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
    def dispatch(self, client: Receiver, payload: bytes) -> None: ...


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

    def dispatch(self, client: Receiver, payload: bytes) -> None:
        msg = orjson.loads(payload)
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

    def dispatch(self, client: Receiver, payload: bytes) -> None:
        msg = orjson.loads(payload)
        kind = msg.get("type")
        if kind == "CANDIDATE":
            body = msg["payload"]
            client.on_candidate(body["seq"], body["t"])
        elif kind == "OPEN":
            client.on_joined(client.client_id, [])
        elif kind in ("ERROR", "ID-TAKEN", "EXPIRE", "LEAVE"):
            client.on_error(f"{kind}: {msg.get('payload')}")


class SocketIo:
    heartbeat: bytes | None = None  # the server pings; dispatch answers
    has_rooms = False  # a join tells no one: the load generator hands out the ids

    def __init__(self, name: str) -> None:
        self.name = name

    def new_client_id(self) -> str:
        return ""  # the server names its sockets (the connect answer's sid)

    def url(self, port: int, client_id: str) -> str:
        return f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"

    def join_frame(self, room: str, topology: str | None = None,
                   resumable: bool = False, token: str = "") -> bytes | None:
        # Connect to the default namespace: an event sent before its answer is dropped,
        # so the join itself goes once the sid arrives (dispatch).
        return b"40"

    def candidate_template(self, dst_id: str) -> bytes:
        return (b'42["signal",{"to":"' + dst_id.encode() +
                b'","data":{"type":"candidate","seq":%d,"t":%d,"candidate":' + _CANDIDATE +
                b'}}]')

    def dispatch(self, client: Receiver, payload: bytes) -> None:
        head = payload[:2]
        if head == b"42":
            name, message = orjson.loads(payload[2:])
            if name == "signal":
                data = message["data"]
                client.on_candidate(data["seq"], data["t"])
        elif payload == b"2":
            client.send(b"3")
        elif head == b"40":
            client.own_id = orjson.loads(payload[2:])["sid"]
            client.send(b'421' + orjson.dumps(["join", client.room]))
        elif head == b"43":
            client.on_joined(client.own_id, [])
        elif head == b"44" or payload[:1] == b"1":
            client.on_error(f"socket.io: {payload.decode(errors='replace')}")


ADAPTERS: dict[str, Adapter] = {
    "switchboard": Switchboard(), "peerjs": PeerJS(),
    **{name: SocketIo(name) for name in ("socketio-pubsub", "socketio-streams")}}
