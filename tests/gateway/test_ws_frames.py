"""The gateway's own WebSocket frame scanning and building (gateway/ws_frames.py)."""

from __future__ import annotations

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from gateway.ws_frames import FrameCounter, scan, text_frame

MASK = b"\x01\x02\x03\x04"
MAX = 1000


def _client_frame(opcode: int, payload: bytes, fin: bool = True, masked: bool = True,
                  rsv: int = 0) -> bytes:
    """A frame as a client sends it, built by hand so that broken ones can be made too."""
    first = (0x80 if fin else 0) | rsv | opcode
    length = len(payload)
    if length < 126:
        header = bytes((first, (0x80 if masked else 0) | length))
    elif length < 65536:
        header = bytes((first, (0x80 if masked else 0) | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((first, (0x80 if masked else 0) | 127)) + length.to_bytes(8, "big")
    if not masked:
        return header + payload
    body = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return header + MASK + body


def _scan(buffer: bytes) -> tuple[list[tuple[bool, bytes]], int, bool]:
    messages: list[tuple[bool, bytes]] = []
    used, hand_over, _ = scan(buffer, MAX, messages, 1 << 30)
    return messages, used, hand_over


TEXT = _client_frame(0x1, b'{"event":"ping"}')


@pytest.mark.parametrize(("payload"), [b"", b"x", b"y" * 125, b"z" * 126, b"w" * 999])
def test_text_frames_of_every_length_form_are_read(payload: bytes) -> None:
    frame = _client_frame(0x1, payload)
    assert _scan(frame) == ([(True, payload)], len(frame), False)


def test_binary_is_read_as_binary_and_pongs_are_skipped() -> None:
    buffer = _client_frame(0x2, b"\x00\xff") + _client_frame(0xA, b"pong") + TEXT
    assert _scan(buffer) == ([(False, b"\x00\xff"), (True, b'{"event":"ping"}')],
                             len(buffer), False)


@pytest.mark.parametrize("cut", [1, 2, 3, 5, len(TEXT) - 1])
def test_an_incomplete_frame_is_left_for_more_data(cut: int) -> None:
    assert _scan(TEXT + TEXT[:cut]) == ([(True, b'{"event":"ping"}')], len(TEXT), False)


def test_an_incomplete_long_header_is_left_for_more_data() -> None:
    frame = _client_frame(0x1, b"a" * 300)
    assert _scan(frame[:3]) == ([], 0, False)


@pytest.mark.parametrize(("why", "frame"), [
    ("close", _client_frame(0x8, b"\x03\xe8")),
    ("ping", _client_frame(0x9, b"hi")),
    ("first fragment", _client_frame(0x1, b"part", fin=False)),
    ("continuation", _client_frame(0x0, b"part")),
    ("unmasked", _client_frame(0x1, b"x", masked=False)),
    ("reserved bit", _client_frame(0x1, b"x", rsv=0x40)),
    ("unknown opcode", _client_frame(0x3, b"x")),
    ("too big", _client_frame(0x1, b"x" * (MAX + 1))),
    ("long pong", _client_frame(0xA, b"p" * 126)),
])
def test_other_frames_are_handed_over_from_their_first_byte(why: str, frame: bytes) -> None:
    assert _scan(TEXT + frame + TEXT) == ([(True, b'{"event":"ping"}')], len(TEXT), True), why


def test_a_too_big_frame_is_handed_over_before_its_payload_arrives() -> None:
    header = _client_frame(0x1, b"x" * 70000)[:10]
    assert _scan(header) == ([], 0, True)


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_built_text_frames_parse_as_one_text_message(size: int) -> None:
    payload = b"a" * size
    client = ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN, max_size=None)
    client.receive_data(text_frame(payload))
    assert client.events_received() == [Frame(Opcode.TEXT, payload)]


def test_scan_counts_complete_frames_pongs_included_and_stops_past_the_budget() -> None:
    pong = _client_frame(0xA, b"")
    buffer = TEXT + pong + TEXT + TEXT[:4]
    messages: list[tuple[bool, bytes]] = []
    assert scan(buffer, MAX, messages, 3) == (len(TEXT) * 2 + len(pong), False, 3)
    messages.clear()
    # One frame more than allowed: it is neither used nor returned.
    assert scan(buffer, MAX, messages, 2) == (len(TEXT) + len(pong), False, 3)
    assert messages == [(True, b'{"event":"ping"}')]


def _count_in_pieces(stream: bytes, piece: int, budget: int = 1 << 30) -> int:
    counter = FrameCounter()
    return sum(counter.count(stream[i:i + piece], budget)
               for i in range(0, len(stream), piece))


STREAM = b"".join([
    _client_frame(0x9, b""), _client_frame(0x1, b"a" * 300, fin=False),
    _client_frame(0x0, b""), _client_frame(0x0, b"b" * 70000, fin=True),
    _client_frame(0xA, b"p" * 125), _client_frame(0x1, b"x", masked=False),
    _client_frame(0x8, b"\x03\xe8"),
])


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64, 1000, len(STREAM)])
def test_frame_counter_counts_every_kind_of_frame_across_any_split(piece: int) -> None:
    assert _count_in_pieces(STREAM, piece) == 7


def test_frame_counter_stops_one_past_the_budget() -> None:
    flood = _client_frame(0x0, b"") * 10_000
    assert FrameCounter().count(flood, 500) == 501
    assert FrameCounter().count(flood, 20_000) == 10_000
