"""Server frames as bytes (shared/frame_bytes.py): what is added reads back as JSON."""

from __future__ import annotations

import json

from shared.frame_bytes import event_prefix, with_fields, with_int
from shared.frames import ErrorText, JoinedRoom, encode_frame, error_frame


def test_every_frame_starts_with_its_event_prefix() -> None:
    assert error_frame(ErrorText.ROOM_FULL, "join_room").startswith(event_prefix("error"))
    joined = encode_frame(JoinedRoom(own_id="a", peers=[]))
    assert joined.startswith(event_prefix("joined_room"))
    assert not joined.startswith(event_prefix("joined"))


def test_fields_added_read_back_with_the_frame() -> None:
    frame = encode_frame(JoinedRoom(own_id="a", peers=[]))
    added = with_fields(frame, {"resume_token": "t", "ice_servers": [{"urls": ["stun:x"]}]})
    assert json.loads(added) == {**json.loads(frame), "resume_token": "t",
                                 "ice_servers": [{"urls": ["stun:x"]}]}
    assert with_fields(frame, {}) is frame
    assert json.loads(with_int(frame, "frame_seq", 12)) == {**json.loads(frame), "frame_seq": 12}
