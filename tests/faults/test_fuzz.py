"""Bad input: more than 100,000 random and mutated frames at a live gateway.

Two phases against one gateway and one relay of their own:

1. Structure (hypothesis, `@given`): frames built field by field, each field right, wrong
   in value or wrong in type (null, numbers past any float, deep nesting, other types),
   binary frames, text that is not JSON, frames past the size limit. Each frame is sent
   alone and its answer checked before the next.
2. Volume (a seeded mutation loop): frames from that corpus and from a table of every
   event, mutated byte-wise and field-wise, pipelined over several sockets at once.

Every frame's answer is predicted by `SessionModel`, docs/protocol.md written as code (it is
the test's own reading of the spec, not the gateway's): an `error` with the spec's text,
the normal reply, or a close with 1007/1009 (after which the socket reconnects). Frames
with two right answers (nested past SAFE_DEPTH; numbers no parser has to hold where the
server reads values) are left to tests of their own. Meanwhile two well-behaved clients
in the fuzzers' room exchange messages, none of which may be lost or late.

SWITCHBOARD_FUZZ_SEED=<n> reruns a seed (printed, and recorded in tests/artifacts).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import websockets
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from harness.rawsocket import (
    BINARY,
    CLOSE,
    PONG,
    TEXT,
    BlockingSocket,
    Frame,
    RawSocket,
    encode_frame,
)
from tests.faults.support import private_cluster, record, tracebacks
from tests.peers import Peer

MAX_FRAME = 64 * 1024  # docs/protocol.md's default, which the gateway runs with
TARGET_FRAMES = 100_000  # sent in the volume phase alone
WORKERS = 8
CHUNK = 200
PROPERTY_EXAMPLES = 1500
# Nesting the fuzz stays within: deeper, a parser may refuse (`invalid message`) or not, so
# such frames are test_deeply_nested_frames_are_answered_not_crashing's.
SAFE_DEPTH = 400

USER_AGENTS = ("chrome", "firefox", "safari", "edge", "opera", "unknown")
PEER_EVENTS = ("offer", "answer", "ice_candidate", "message")
EVENTS = ("info", "ping", "join_room", "leave_room", "update_status", "send_to_peer", "resume")
ERROR_TEXTS = frozenset({
    "invalid message", "no event given", "unknown event", "no room id given",
    "room id too long", "already joined another room", "room is full",
    "blank name not allowed", "name too long", "unknown user agent", "invalid status",
    "currently not in any room", "cannot send raw data", "unknown peer", "event not allowed",
    "service unavailable", "rate limit exceeded", "wrong topology", "cannot resume",
    "not allowed",
})
# Not a token the service hands out: the gateway refuses it without asking a relay. (A
# well-formed one would be refused by a relay, a round trip later, while the frames sent
# meanwhile find the socket resuming: tests/e2e/test_resume.py has those.)
TOKEN = "1.not-a-peer.AAAAAAAAAAAAAAAAAAAAAA"
BROADCASTS = frozenset({"new_peer", "peer_left", "peer_updated_status", "host_changed"})
SPEC_CLOSES = frozenset({1007, 1009})

# --- JSON the way a fuzzer writes it ------------------------------------------------------


class Raw(str):
    """JSON text put in as it is: numbers no float holds, nesting json.dumps won't make."""


class Own:
    """Stands for the sending socket's own peer id, known only once it has joined."""


OWN = Own()


def to_json(value: Any, own_id: str) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Own):
        return json.dumps(own_id)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{to_json(v, own_id)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v, own_id) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def deep(depth: int, kind: str) -> Raw:
    if kind == "list":
        return Raw("[" * depth + "]" * depth)
    return Raw('{"a":' * depth + "1" + "}" * depth)


HUGE_NUMBERS = [Raw(n) for n in (
    "1e400", "-1e400", "1E+99999", "4.9e-99999", "-0", "0.0e0", "1" * 400, "-" + "9" * 4500,
    "18446744073709551616", "-9223372036854775809", "3.141592653589793238462643383279502884")]

# --- the spec as code: what the server answers to a frame ---------------------------------

Key = tuple[str, ...]  # an answer, as compared: ("error", text, received) or ("pong",) ...
_SURROGATE = re.compile("[\ud800-\udfff]")
_OPENERS = re.compile(r"[\[{]")


class Number:
    """A JSON number as written: compared by its text, as it passes through by its text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Number) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def unrepresentable(self) -> bool:
        """Past a double's range, or an integer of more digits than Python converts."""
        if _INTEGER.fullmatch(self.text):
            return len(self.text.lstrip("-")) > 4300
        return math.isinf(float(self.text))


_INTEGER = re.compile(r"-?[0-9]+")


def _no_constants(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


class Object(dict[str, Any]):
    """A JSON object as Python reads it (a repeated key keeps its last value), which also
    remembers every pair: a server may look at the values that the last one replaces."""

    pairs: list[tuple[str, Any]]


def _object(pairs: list[tuple[str, Any]]) -> Object:
    decoded = Object(pairs)
    decoded.pairs = pairs
    return decoded


def parse_json(text: str) -> Any:
    return json.loads(text, parse_int=Number, parse_float=Number,
                      parse_constant=_no_constants, object_pairs_hook=_object)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=True,
                      default=lambda number: {"\x00number": number.text})


def _walk(value: Any) -> Any:
    """Every string, key and number in a decoded value, replaced ones too (iteratively: it
    may be deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, Object):
            for key, inner in item.pairs:
                stack += (key, inner)
        else:
            yield item


def _unrepresentable_read(frame: Object) -> bool:
    """An unrepresentable number where the server reads values (not where it skips them or
    passes them through, as in `data`)? JSON parsers may refuse such numbers (RFC 8259,
    section 9), so the answer is then either: these frames are
    test_unrepresentable_numbers_...'s."""
    read = [value for key, value in frame.pairs
            if key in ("event", "room_id", "status", "peer_id", "topology", "resume_token",
                       "last_frame_seq")]
    return any(isinstance(item, Number) and item.unrepresentable()
               for value in read for item in _walk(value))


def nesting(text: str) -> int:
    """How deep brackets nest outside strings (an upper bound is enough when it is low)."""
    if len(_OPENERS.findall(text)) <= SAFE_DEPTH:
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _has_surrogate(value: Any) -> bool:
    """Whether a lone surrogate (from a \\uD8xx escape) is anywhere in a decoded value."""
    return any(isinstance(item, str) and _SURROGATE.search(item) for item in _walk(value))


def error(text: str, received: str | None = None) -> Key:
    return ("error", text, "" if received is None else received)


class Skipped(Exception):
    """A frame with two right answers, left to a dedicated test: nested past SAFE_DEPTH, or
    an unrepresentable number where the server reads values."""


@dataclass
class Expect:
    answers: list[Key]
    close: int | None = None


@dataclass
class SessionModel:
    """One socket as docs/protocol.md describes it: what it is in, what it is answered."""

    own_id: str
    in_room: bool = False
    status: dict[str, str] = field(default_factory=dict)

    def answer(self, opcode: int, payload: bytes, utf8_closes: bool = True) -> Expect:
        if len(payload) > MAX_FRAME:
            return Expect([], close=1009)
        if opcode == BINARY:
            return Expect([error("invalid message")])
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            assert utf8_closes, "invalid UTF-8 must go as a binary frame in this mix"
            return Expect([], close=1007)
        if nesting(text) > SAFE_DEPTH:
            raise Skipped
        try:
            frame = parse_json(text)
        except (ValueError, RecursionError):
            return Expect([error("invalid message")])
        if _has_surrogate(frame) or not isinstance(frame, dict):
            return Expect([error("invalid message")])
        if _unrepresentable_read(frame):
            raise Skipped
        event = frame.get("event")
        if not isinstance(event, str):
            return Expect([error("no event given")])
        if event == "ping":
            return Expect([("pong",)])
        if event == "info":
            return Expect([("info",)])
        if event == "leave_room":
            self.in_room = False
            return Expect([])
        handlers: dict[str, Callable[[dict[str, Any]], Key]] = {
            "join_room": self._join, "update_status": self._update,
            "send_to_peer": self._send, "resume": self._resume,
        }
        handler = handlers.get(event)
        if handler is None:
            return Expect([error("unknown event", event)])
        return Expect([handler(frame)])

    @staticmethod
    def _status(value: Any) -> dict[str, str] | str:
        """A validated status, or the error text."""
        if not isinstance(value, dict):
            return "invalid status"
        name, agent = value.get("name"), value.get("user_agent")
        if ("name" in value and not isinstance(name, str)) or (
                "user_agent" in value and not isinstance(agent, str)):
            return "invalid status"
        status = {}
        if name is not None:
            if not name.strip():
                return "blank name not allowed"
            if len(name) > 50:
                return "name too long"
            status["name"] = name if name.isascii() else "*" * len(name)
        if agent is not None:
            if agent not in USER_AGENTS:
                return "unknown user agent"
            status["user_agent"] = agent
        return status

    def _join(self, frame: dict[str, Any]) -> Key:
        room = frame.get("room_id")
        if not isinstance(room, str) or not room:
            return error("no room id given", "join_room")
        if len(room) > 50:
            return error("room id too long", "join_room")
        if self.in_room:
            return error("already joined another room", "join_room")
        status = self._status(frame.get("status", {}))
        if isinstance(status, str):
            return error(status, "join_room")
        # Fuzzers only ever open mesh rooms, so "mesh" (or none, or null) always fits.
        if frame.get("topology") not in (None, "mesh"):
            return error("wrong topology", "join_room")
        self.in_room, self.status = True, status
        return ("joined_room",)

    def _resume(self, frame: dict[str, Any]) -> Key:
        # No fuzzer holds a token this service handed out: none can resume.
        if self.in_room:
            return error("already joined another room", "resume")
        return error("cannot resume", "resume")

    def _update(self, frame: dict[str, Any]) -> Key:
        if not self.in_room:
            return error("currently not in any room", "update_status")
        status = self._status(frame.get("status"))
        if isinstance(status, str):
            return error(status, "update_status")
        self.status = {**self.status, **status}
        return ("status", canonical(self.status))

    def _send(self, frame: dict[str, Any]) -> Key:
        data = frame.get("data")
        if not isinstance(data, dict):
            return error("cannot send raw data", "send_to_peer")
        if not self.in_room:
            return error("currently not in any room", "send_to_peer")
        peer = frame.get("peer_id")
        if not isinstance(peer, str):
            return error("unknown peer", "send_to_peer")
        if data.get("event") not in PEER_EVENTS:
            return error("event not allowed", "send_to_peer")
        if peer != self.own_id:  # nobody else in the room is ever addressed by a fuzzer
            return error("unknown peer", "send_to_peer")
        data = {k: v for k, v in data.items() if k != "sender_id"}
        return ("message", canonical(data))


def classify(frame: Frame, own_id: str) -> Key | None:
    """A received frame as a Key; None for what other members' doings bring."""
    if frame.opcode == CLOSE:
        code = frame.close_code if frame.payload else 1006
        assert code in SPEC_CLOSES, f"closed with {code}: not a close docs/protocol.md gives a frame"
        return ("close", str(code))
    assert frame.opcode == TEXT, f"unexpected opcode {frame.opcode}"
    message = parse_json(frame.payload.decode())
    event = message.get("event")
    if event == "error":
        assert message["message"] == message["description"] in ERROR_TEXTS, message
        return error(message["message"], message.get("received_msg"))
    if event == "pong":
        return ("pong",)
    if event == "info":
        assert message["protocol_version"] == "1.0.0", message
        return ("info",)
    if event == "joined_room":
        assert message["own_id"] == own_id, message
        return ("joined_room",)
    sender = message.get("sender_id")
    # A fuzzer that joined resumable gets numbered frames: the numbers are resume's
    # business (tests/e2e/test_resume.py), not what the frame answers.
    message = {k: v for k, v in message.items() if k != "frame_seq"}
    if event == "peer_updated_status" and sender == own_id:
        return ("status", canonical(message["status"]))
    if event in BROADCASTS:
        assert sender != own_id and message.get("peer_id") != own_id, message
        return None
    assert sender == own_id, f"a message from another member reached a fuzzer: {message}"
    return ("message", canonical({k: v for k, v in message.items() if k != "sender_id"}))


def kind_of(key: Key) -> str:
    if key[0] == "error":
        return f"error: {key[1]}"
    if key[0] == "close":
        return f"close {key[1]}"
    return key[0]


# --- generating frames ---------------------------------------------------------------------

def huge_numbers() -> st.SearchStrategy[Raw]:
    # By index: the numbers themselves would fill any report that shows the strategy.
    return st.integers(0, len(HUGE_NUMBERS) - 1).map(HUGE_NUMBERS.__getitem__)


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
                        huge_numbers())
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
        max_leaves=6)


def anything() -> st.SearchStrategy[Any]:
    """Any JSON value: the wrong type for every field, sometimes deeply nested."""
    depths = st.integers(1, SAFE_DEPTH - 8)
    return st.one_of(json_values(), st.builds(deep, depths, st.sampled_from(["list", "map"])))


def or_wrong(right: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(right, right, anything())


def frames_strategy(room: str, utf8_closes: bool) -> st.SearchStrategy[tuple[int, Any]]:
    """(opcode, frame): a frame is an object to encode, or bytes to send as they are."""
    names = st.one_of(st.text(max_size=60), st.sampled_from(
        ["", " ", "\t\n", "x" * 50, "x" * 51, "✈✈", "é" * 50, "é" * 51, "\u3000"]))
    agents = st.one_of(st.sampled_from(USER_AGENTS), st.text(max_size=8))
    status = st.fixed_dictionaries({}, optional={
        "name": or_wrong(names), "user_agent": or_wrong(agents), "extra": anything()})
    rooms = st.one_of(st.just(room), st.text(max_size=60),
                      st.sampled_from(["", "x" * 50, "x" * 51, "é" * 50, "é" * 51]))
    peers = st.one_of(st.just(OWN), st.just(OWN), st.uuids().map(str), st.text(max_size=40))
    data = st.fixed_dictionaries({}, optional={
        "event": or_wrong(st.one_of(st.sampled_from(PEER_EVENTS), st.text(max_size=10))),
        "sender_id": anything(), "sdp": anything(), "candidate": anything()})
    fields = {
        "join_room": {"room_id": or_wrong(rooms), "status": or_wrong(status),
                      "topology": or_wrong(st.just("mesh")), "resumable": or_wrong(st.just(True)),
                      "token": anything()},  # no join tokens are required here: ignored
        "resume": {"resume_token": or_wrong(st.one_of(st.text(max_size=80), st.just(TOKEN))),
                   "last_frame_seq": or_wrong(st.integers(0, 5))},
        "update_status": {"status": or_wrong(status)},
        "send_to_peer": {"peer_id": or_wrong(peers), "data": or_wrong(data)},
    }

    def event_frame(event: Any) -> st.SearchStrategy[dict[str, Any]]:
        own_fields = fields.get(event, {}) if isinstance(event, str) else {}
        optional = {**own_fields, "x": anything()}
        return st.fixed_dictionaries({"event": st.just(event)}, optional=optional)

    events = st.one_of(st.sampled_from(EVENTS), st.sampled_from(EVENTS), anything())
    structured = events.flatmap(event_frame)
    maybe_objects = st.one_of(structured, structured, structured, anything(),
                              st.fixed_dictionaries({}, optional={"x": anything()}))
    bad_utf8 = st.binary(min_size=1, max_size=64).filter(_not_utf8)
    oversize = st.integers(MAX_FRAME + 1, MAX_FRAME + 4096).map(
        lambda n: ping_of_size(n).encode())
    text_objects = st.tuples(st.just(TEXT), maybe_objects)
    return st.one_of(
        text_objects, text_objects, text_objects, text_objects, text_objects, text_objects,
        st.tuples(st.just(BINARY), maybe_objects),
        st.tuples(st.just(TEXT), st.text(max_size=80).map(str.encode)),
        st.tuples(st.just(BINARY), st.binary(max_size=80)),
        st.tuples(st.just(TEXT if utf8_closes else BINARY), bad_utf8),
        st.tuples(st.just(TEXT), oversize),
        st.tuples(st.just(TEXT), st.integers(0, 16).map(
            lambda n: ping_of_size(MAX_FRAME - n).encode())),
    )


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def ping_of_size(size: int) -> str:
    head = '{"event":"ping","pad":"'
    return head + "x" * (size - len(head) - 2) + '"}'


def encode(frame: Any, own_id: str) -> bytes:
    return frame if isinstance(frame, bytes) else to_json(frame, own_id).encode()


def sweep(room: str) -> list[Any]:
    """Every field of every event set to every kind of wrong value, once each."""
    wrong: list[Any] = [None, True, False, 0, -1, 1.5, "", " ", "x" * 51, [], [1, "a"], {},
                        {"a": None}, deep(SAFE_DEPTH - 8, "list"), deep(SAFE_DEPTH - 8, "map"),
                        *HUGE_NUMBERS]
    valid: dict[str, dict[str, Any]] = {
        "ping": {}, "info": {}, "leave_room": {},
        "join_room": {"room_id": room, "status": {"name": "n", "user_agent": "safari"},
                      "topology": "mesh", "resumable": True},
        "resume": {"resume_token": TOKEN, "last_frame_seq": 0},
        "update_status": {"status": {"name": "n", "user_agent": "edge"}},
        "send_to_peer": {"peer_id": OWN, "data": {"event": "offer", "sdp": "v=0"}},
    }
    frames: list[Any] = [{"event": value} for value in wrong]
    for event, fields in valid.items():
        paths = [(name,) for name in [*fields, "x"]] + [
            (name, sub) for name, value in fields.items() if isinstance(value, dict)
            for sub in [*value, "sender_id"]]
        for path in paths:
            for value in wrong:
                frame = {"event": event, **_copy(fields)}
                target = frame
                for step in path[:-1]:
                    target = target[step]
                target[path[-1]] = value
                frames.append(frame)
        frames.append({"event": event, **_copy(fields)})
    return frames


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


class Mutator:
    """Seeded, fast: a frame from the corpus, changed byte-wise or field-wise."""

    def __init__(self, rng: random.Random, corpus: list[tuple[int, Any]],
                 utf8_closes: bool) -> None:
        self.rng = rng
        self.objects = [entry for entry in corpus if not isinstance(entry[1], bytes)]
        self.blobs = [entry for entry in corpus if isinstance(entry[1], bytes)] or self.objects
        self.utf8_closes = utf8_closes

    def frame(self, own_id: str) -> tuple[int, bytes]:
        rng = self.rng
        opcode, frame = rng.choice(self.objects if rng.random() < 0.85 else self.blobs)
        roll = rng.random()
        if roll < 0.002:
            return TEXT, ping_of_size(MAX_FRAME + rng.randint(1, 3000)).encode()
        if roll < 0.004:
            bad = bytes([rng.choice([0x80, 0xC0, 0xF5, 0xFF])]) + os.urandom(3)
            return (TEXT if self.utf8_closes else BINARY), b'{"event":"ping","x":"' + bad + b'"}'
        if roll < 0.6 and isinstance(frame, dict):
            for _ in range(rng.choice((1, 1, 2))):
                frame = self._mutate_fields(frame)
        payload = encode(frame, own_id)
        if roll > 0.8:
            payload = self._mutate_bytes(payload)
        if len(payload) > MAX_FRAME:
            payload = payload[:MAX_FRAME]
        if opcode == TEXT and _not_utf8(payload):
            opcode = BINARY  # invalid UTF-8 as text closes the socket: kept for the ends
        if rng.random() < 0.02:
            opcode = BINARY
        return opcode, payload

    def _mutate_fields(self, frame: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        frame = _copy(frame)
        target = frame
        nested = [k for k, v in frame.items() if isinstance(v, dict)]
        if nested and rng.random() < 0.4:
            target = frame[rng.choice(nested)]
        keys = list(target) or ["event"]
        key = rng.choice(keys + ["event", "x", "sender_id", "status", "data"])
        action = rng.random()
        if action < 0.2:
            target.pop(key, None)
        elif action < 0.8:
            target[key] = self._value()
        else:
            target[key + rng.choice(["", "_", "\u00e9", "\x00"])] = self._value()
        return frame

    def _value(self) -> Any:
        rng = self.rng
        pick = rng.random()
        if pick < 0.1:
            return rng.choice(HUGE_NUMBERS)
        if pick < 0.15:
            return deep(rng.randint(1, SAFE_DEPTH // 2), rng.choice(["list", "map"]))
        if pick < 0.3:
            return rng.choice(EVENTS + PEER_EVENTS + USER_AGENTS)
        if pick < 0.4:
            return OWN
        if pick < 0.5:
            return "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(0, 60)))
        return rng.choice([None, True, 0, -7, 2.5, "", " ", [], {}, [None], {"event": "offer"}])

    def _mutate_bytes(self, payload: bytes) -> bytes:
        rng = self.rng
        data = bytearray(payload)
        for _ in range(rng.randint(1, 4)):
            size = len(data)
            action = rng.randrange(7)
            at = rng.randrange(size + 1)
            if action == 0 and size:
                data[min(at, size - 1)] = rng.randrange(256)
            elif action == 1:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            elif action == 2:
                del data[at:at + rng.randint(1, 8)]
            elif action == 3:
                end = min(size, at + rng.randint(1, 16))
                data[at:at] = data[at:end] * rng.randint(1, 3)
            elif action == 4:
                data = data[:at]
            elif action == 5:
                data[at:at] = bytes([rng.choice(b'{}[]",:\\0-eE.')])
            else:
                _, other = rng.choice(self.objects)
                other_bytes = encode(other, "x")
                data = data[:at] + other_bytes[rng.randrange(len(other_bytes) + 1):]
        return bytes(data)


# --- the clients ---------------------------------------------------------------------------

@dataclass
class Tally:
    sent: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    broadcasts: int = 0
    reconnects: int = 0
    skipped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, keys: list[Key], unanswered: int = 0) -> None:
        """Answers received; `unanswered`: frames docs/protocol.md answers with nothing
        (leave_room), which were answered with nothing."""
        with self.lock:
            self.answers.update(kind_of(k) for k in keys)
            if unanswered:
                self.answers["nothing (leave_room)"] += unanswered


@dataclass(frozen=True)
class Sent:
    """A frame sent, and the answers docs/protocol.md gives it."""

    opcode: int
    payload: bytes
    answers: list[Key]


def _mismatch(expected: list[Key], received: list[Key], sent: list[Sent]) -> str:
    missing = Counter(expected) - Counter(received)
    extra = Counter(received) - Counter(expected)
    suspects = [f for f in sent if any(k in missing for k in f.answers)][:5] or sent[:5]
    return (f"answers differ from docs/protocol.md's: missing {dict(missing)}, unexpected "
            f"{dict(extra)}, among {len(sent)} frames sent at once; those that should have "
            f"had the missing answers: "
            + "; ".join(f"opcode {f.opcode}: {f.payload[:2000]!r}" for f in suspects))


class PropertySocket:
    """Phase 1: one blocking socket, one frame at a time, each answer checked."""

    def __init__(self, port: int, room: str, tally: Tally) -> None:
        self.port, self.room, self.tally = port, room, tally
        self.sock: BlockingSocket
        self.model: SessionModel
        self.connect()

    def connect(self) -> None:
        self.sock = BlockingSocket(self.port)
        self.sock.send(json.dumps({"event": "join_room", "room_id": self.room}))
        while True:
            joined = self.sock.read_message(timeout=10).json()
            if joined["event"] not in BROADCASTS:
                break
        assert joined["event"] == "joined_room", joined
        self.model = SessionModel(joined["own_id"], in_room=True)

    def _next(self, after: bytes = b"") -> Key:
        """The next answer to this socket, skipping what other members' doings bring."""
        while True:
            try:
                frame = self.sock.read_message(timeout=5)
            except TimeoutError:
                raise AssertionError(f"no answer within 5 s after {after[:300]!r}") from None
            key = classify(frame, self.model.own_id)
            if key is not None:
                return key
            self.tally.broadcasts += 1

    def check(self, opcode: int, frame: Any, utf8_closes: bool) -> None:
        payload = encode(frame, self.model.own_id)
        try:
            expect = self.model.answer(opcode, payload, utf8_closes)
        except Skipped:
            self.tally.skipped += 1
            return
        self.sock.send(payload, opcode)
        self.tally.sent += 1
        if expect.close is not None:
            key = self._next(payload)
            assert key == ("close", str(expect.close)), f"{key} after {payload[:200]!r}"
            self.tally.add([key])
            self.sock.close()
            self.tally.reconnects += 1
            self.connect()
            return
        self.sock.send(b'{"event":"ping"}')  # a barrier: local answers come before its pong
        wanted = [*expect.answers, ("pong",)]
        received: list[Key] = []
        while Counter(received) != Counter(wanted):
            key = self._next(payload)
            received.append(key)
            assert not Counter(received) - Counter(wanted), _mismatch(
                wanted, received, [Sent(opcode, payload, expect.answers)])
        received.remove(("pong",))
        self.tally.add(received, unanswered=not expect.answers)


@dataclass
class Fuzzer:
    """Phase 2: one socket at a time of a worker, pipelining a chunk and checking it."""

    port: int
    room: str
    mutator: Mutator
    tally: Tally
    utf8_closes: bool

    async def run(self, done: Callable[[], bool]) -> None:
        while not done():
            raw = await RawSocket.connect(self.port)
            try:
                closed = await self._session(raw, done)
            finally:
                await raw.close()
            if closed:
                self.tally.reconnects += 1

    async def _session(self, raw: RawSocket, done: Callable[[], bool]) -> bool:
        raw.send_json(event="join_room", room_id=self.room)
        joined = await raw.expect_json(timeout=10)
        assert joined["event"] == "joined_room", joined
        model = SessionModel(joined["own_id"], in_room=True)
        keys: asyncio.Queue[Key] = asyncio.Queue()

        async def read() -> None:
            while raw.close_code is None:
                frame = await raw.read_frame(timeout=60)
                if frame.opcode == PONG or (frame.opcode not in (TEXT, CLOSE, BINARY)):
                    continue
                key = classify(frame, model.own_id)
                if key is None:
                    self.tally.broadcasts += 1
                else:
                    keys.put_nowait(key)

        reader = asyncio.create_task(read())
        try:
            while not done():
                closing = await self._chunk(raw, model, keys, reader)
                if closing:
                    return True
            return False
        finally:
            reader.cancel()

    async def _chunk(self, raw: RawSocket, model: SessionModel, keys: asyncio.Queue[Key],
                     reader: asyncio.Task[None]) -> bool:
        expected: list[Key] = []
        sent: list[Sent] = []
        killer: tuple[bytes, int] | None = None
        batch = bytearray()
        while len(sent) < CHUNK:
            opcode, payload = self.mutator.frame(model.own_id)
            try:
                expect = model.answer(opcode, payload, self.utf8_closes)
            except Skipped:
                self.tally.skipped += 1
                continue
            if expect.close is not None:
                killer = (encode_frame(opcode, payload), expect.close)
                break
            batch += encode_frame(opcode, payload)
            expected += expect.answers
            sent.append(Sent(opcode, payload, expect.answers))
        raw.send_raw(bytes(batch))
        await raw.drain()
        self.tally.sent += len(sent)
        received: list[Key] = []
        for _ in expected:
            received.append(await self._key(keys, reader, expected, sent, received))
        assert Counter(received) == Counter(expected), _mismatch(expected, received, sent)
        self.tally.add(received, unanswered=sum(not f.answers for f in sent))
        if killer is None:
            return False
        raw.send_raw(killer[0])
        await raw.drain()
        self.tally.sent += 1
        key = await self._key(keys, reader, [("close", str(killer[1]))], [])
        assert key == ("close", str(killer[1])), f"expected close {killer[1]}, got {key}"
        self.tally.add([key])
        return True

    @staticmethod
    async def _key(keys: asyncio.Queue[Key], reader: asyncio.Task[None], expected: list[Key],
                   sent: list[Sent], received: list[Key] | None = None) -> Key:
        getter = asyncio.ensure_future(keys.get())
        finished, _ = await asyncio.wait({getter, reader}, timeout=15,
                                         return_when=asyncio.FIRST_COMPLETED)
        if getter in finished:
            return getter.result()
        getter.cancel()
        if reader in finished:
            reader.result()  # raises what went wrong in it
        missing = Counter(expected) - Counter(received or [])
        raise AssertionError(f"no answer within 15 s; still expecting {missing}; frames: "
                             f"{[f.payload[:300] for f in sent if set(f.answers) & set(missing)]}")


@dataclass
class Exchange:
    """Two well-behaved clients in the fuzzers' room, messaging each other all along."""

    a: Peer
    b: Peer
    rounds: int = 0
    latencies: list[float] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            for sender, receiver in ((self.a, self.b), (self.b, self.a)):
                await sender.send(event="send_to_peer", peer_id=receiver.id,
                                  data={"event": "message", "seq": self.rounds})
                frame = await self._next_message(receiver)
                assert frame == {"event": "message", "seq": self.rounds,
                                 "sender_id": sender.id}, frame
            self.latencies.append(time.monotonic() - started)
            self.rounds += 1

    @staticmethod
    async def _next_message(peer: Peer) -> dict[str, Any]:
        while True:
            frame = await peer.recv(timeout=10)
            if frame["event"] not in BROADCASTS:
                return frame


# --- the tests -----------------------------------------------------------------------------

FUZZ_ENV = {"SWITCHBOARD_FRAME_RATE": "1000000", "SWITCHBOARD_FRAME_BURST": "1000000",
            "SWITCHBOARD_WIRE_FRAME_RATE": "1000000", "SWITCHBOARD_WIRE_FRAME_BURST": "1000000"}


def _property_phase(port: int, room: str, tally: Tally, corpus: list[tuple[int, Any]],
                    utf8_closes: bool, run_seed: int) -> None:
    client = PropertySocket(port, room, tally)

    @seed(run_seed)
    @settings(max_examples=PROPERTY_EXAMPLES, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(frames_strategy(room, utf8_closes))
    def every_frame_gets_the_spec_answer(example: tuple[int, Any]) -> None:
        opcode, frame = example
        client.check(opcode, frame, utf8_closes)
        payload_size = len(frame) if isinstance(frame, bytes) else 0
        if payload_size <= MAX_FRAME:
            corpus.append(example)

    try:
        every_frame_gets_the_spec_answer()
    finally:
        client.sock.close()


async def _fuzz(utf8_closes: bool) -> None:
    run_seed = int(os.environ.get("SWITCHBOARD_FUZZ_SEED", random.randrange(1 << 32)))
    print(f"\nfuzz seed {run_seed} (SWITCHBOARD_FUZZ_SEED reruns it)")
    with private_cluster(gateways=1, relays=1, **FUZZ_ENV) as cluster:
        port = cluster.gateways[0][1]
        room = f"fuzz-{uuid.uuid4().hex[:12]}"
        # No keepalive pings of their own: websockets draws their payloads from `random`,
        # which hypothesis, running meanwhile in a thread, would take for its own.
        a, b = [Peer(await websockets.connect(cluster.url(0), ping_interval=None))
                for _ in range(2)]
        await a.join(room)
        await b.join(room)
        await a.expect("new_peer")
        exchange = Exchange(a, b)
        stop = asyncio.Event()
        exchanging = asyncio.create_task(exchange.run(stop))
        started = time.monotonic()
        property_tally, volume_tally = Tally(), Tally()
        corpus: list[tuple[int, Any]] = [(TEXT, frame) for frame in sweep(room)]
        try:
            await asyncio.to_thread(_property_phase, port, room, property_tally, corpus,
                                    utf8_closes, run_seed)
            property_s = time.monotonic() - started
            rng = random.Random(run_seed)
            corpus = [(o, f) for o, f in corpus if not isinstance(f, bytes) or len(f) < 4096]
            fuzzers = [Fuzzer(port, room, Mutator(random.Random(rng.random()), corpus,
                                                  utf8_closes), volume_tally, utf8_closes)
                       for _ in range(WORKERS)]
            # The sweep first, whole, from one socket; then mutations from all of them.
            sweeper = Fuzzer(port, room, _Replay(sweep(room)), volume_tally, utf8_closes)
            await sweeper.run(lambda: sweeper.mutator.exhausted())  # type: ignore[attr-defined]

            def done() -> bool:
                return volume_tally.sent >= TARGET_FRAMES

            await asyncio.gather(*(fuzzer.run(done) for fuzzer in fuzzers))
            volume_s = time.monotonic() - started - property_s
        except BaseException:
            exchanging.cancel()
            raise
        finally:
            stop.set()
        await asyncio.wait_for(exchanging, 15)
        gateway, relay = cluster.gateways[0][0], cluster.relays[0]
        figures = {
            "seed": run_seed, "utf8_closes": utf8_closes,
            "property_frames": property_tally.sent, "property_s": round(property_s, 1),
            "property_answers": dict(property_tally.answers),
            "volume_frames": volume_tally.sent, "volume_s": round(volume_s, 1),
            "volume_frames_per_s": round(volume_tally.sent / volume_s),
            "volume_answers": dict(volume_tally.answers),
            "reconnects": property_tally.reconnects + volume_tally.reconnects,
            "broadcasts_seen_by_fuzzers": property_tally.broadcasts + volume_tally.broadcasts,
            "skipped": property_tally.skipped + volume_tally.skipped,
            "good_client_rounds": exchange.rounds,
            "good_client_max_round_s": round(max(exchange.latencies), 3),
        }
        record("fuzz", **figures)
        assert volume_tally.sent >= TARGET_FRAMES
        assert exchange.rounds >= 20, "the well-behaved clients barely got a turn"
        assert gateway.alive() and relay.alive()
        assert not tracebacks(cluster), tracebacks(cluster)
        # The partner relation still works after the storm, both ways.
        await a.send(event="send_to_peer", peer_id=b.id, data={"event": "message", "end": 1})
        assert await Exchange._next_message(b) == {"event": "message", "end": 1,
                                                   "sender_id": a.id}
        await a.close()
        await b.close()


class _Replay(Mutator):
    """The sweep, frame after frame, unmutated; then nothing."""

    def __init__(self, frames: list[Any]) -> None:
        self.frames = list(frames)
        self.position = 0

    def exhausted(self) -> bool:
        return self.position >= len(self.frames)

    def frame(self, own_id: str) -> tuple[int, bytes]:
        frame = self.frames[self.position % len(self.frames)]
        self.position += 1
        return TEXT, encode(frame, own_id)


@pytest.mark.timeout(240)
async def test_fuzz_frames_get_spec_answers_and_a_good_client_is_unaffected() -> None:
    """Invalid UTF-8 comes in text frames (closed with 1007, then the fuzzer reconnects)
    and in binary frames (answered `invalid message`)."""
    await _fuzz(utf8_closes=True)


async def test_deeply_nested_frames_are_answered_not_crashing() -> None:
    with private_cluster(gateways=1, relays=1, **FUZZ_ENV) as cluster:
        client = await RawSocket.connect(cluster.gateways[0][1])
        outcomes: dict[str, Any] = {}
        # As deep as fits in one frame: 30,000 lists, 10,000 maps. Several sizes, in a
        # row on one socket, which must still work after them.
        for kind, depth in (("list", 1_000), ("map", 1_000), ("list", 5_000),
                            ("map", 5_000), ("list", 30_000), ("map", 10_000)):
            text = f'{{"event":"ping","x":{deep(depth, kind)}}}'
            assert len(text) <= MAX_FRAME
            client.send(text)
            message = await client.read_message()
            answer = {"closed": client.close_code} if message.opcode == CLOSE \
                else message.json()
            outcomes[f"{kind}-{depth}"] = answer
            # A parser may refuse such depth: `invalid message`, or parse it: pong.
            assert answer in ({"event": "pong"}, {
                "event": "error", "message": "invalid message",
                "description": "invalid message"}), outcomes
        client.send('{"event":"ping"}')
        assert await client.expect_json() == {"event": "pong"}
        record("fuzz.deep_nesting", answers={
            where: answer.get("message", answer.get("event")) for where, answer in outcomes.items()})
        await client.close()
        assert not tracebacks(cluster), tracebacks(cluster)


# --- numbers no parser has to hold, where the server reads values --------------------------

UNREPRESENTABLE = [Raw("1e400"), Raw("-1.8e308"), Raw("7" * 4301)]
# (where, frame, whether the socket is in a room first, the answer if the number is read)
READ_POSITIONS: list[tuple[str, dict[str, Any], bool, dict[str, Any]]] = [
    ("event", {"event": "N"}, False, {"message": "no event given"}),
    ("ping.room_id", {"event": "ping", "room_id": "N"}, False, {"event": "pong"}),
    ("join.room_id", {"event": "join_room", "room_id": "N"}, False,
     {"message": "no room id given", "received_msg": "join_room"}),
    ("join.status.extra", {"event": "join_room", "room_id": "R", "status": {"x": "N"}}, False,
     {"event": "joined_room"}),
    ("status.name", {"event": "update_status", "status": {"name": "N"}}, True,
     {"message": "invalid status", "received_msg": "update_status"}),
    ("peer_id", {"event": "send_to_peer", "peer_id": "N", "data": {"event": "offer"}}, True,
     {"message": "unknown peer", "received_msg": "send_to_peer"}),
    ("data.event", {"event": "send_to_peer", "peer_id": "OWN", "data": {"event": "N"}}, True,
     {"message": "event not allowed", "received_msg": "send_to_peer"}),
    ("data.sender_id", {"event": "send_to_peer", "peer_id": "OWN",
                        "data": {"event": "offer", "sender_id": "N"}}, True,
     {"event": "offer"}),
]


@pytest.fixture(scope="module")
def numbers_port() -> Any:
    with private_cluster(gateways=1, relays=1, **FUZZ_ENV) as cluster:
        yield cluster.gateways[0][1]
        assert not tracebacks(cluster), tracebacks(cluster)


def _fill(value: Any, number: Raw, room: str) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, number, room) for k, v in value.items()}
    return {"N": number, "R": room, "OWN": OWN}.get(value, value)


@pytest.mark.parametrize("number", UNREPRESENTABLE, ids=["1e400", "-1.8e308", "4301-digits"])
@pytest.mark.parametrize(("where", "frame", "in_room", "normal"), [
    pytest.param(*case, id=case[0]) for case in READ_POSITIONS])
async def test_unrepresentable_numbers_where_values_are_read_get_a_spec_answer(
        numbers_port: int, number: Raw, where: str, frame: dict[str, Any], in_room: bool,
        normal: dict[str, Any]) -> None:
    """JSON parsers may refuse numbers they cannot hold (RFC 8259, section 9): the answer
    is what the frame means without that number, or `invalid message`; nothing else."""
    room = f"num-{uuid.uuid4().hex[:12]}"
    client = await RawSocket.connect(numbers_port)
    own_id = ""
    if in_room:
        client.send_json(event="join_room", room_id=room)
        own_id = (await client.expect_json())["own_id"]
    client.send(to_json(_fill(frame, number, room), own_id))
    answer = await client.expect_json()
    refused = {"event": "error", "message": "invalid message", "description": "invalid message"}
    meant = {"event": "error", "description": normal["message"], **normal} \
        if "message" in normal else normal
    assert answer == refused or all(answer.get(k) == v for k, v in meant.items()), answer
    client.send_json(event="ping")
    assert await client.expect_json() == {"event": "pong"}
    await client.close()
