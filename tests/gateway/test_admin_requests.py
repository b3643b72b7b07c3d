"""What the admin API accepts (gateway/admin_requests.py): routes, the key, and bodies,
each either an event for the room's relay or a 400 with a clear text, never anything else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.admin_requests import (
    ACTIONS,
    NOT_FOUND,
    WRONG_METHOD,
    BadRequest,
    Route,
    authorized,
    close_event,
    deadline_event,
    message_event,
    remove_event,
    route_of,
)
from shared.events import RemoveAll, RemovePeers, ServerMessage, SetDeadline

KEY = "k" * 40


@pytest.mark.parametrize(("method", "path", "route"), [
    ("GET", b"/admin/rooms", Route("list_rooms")),
    ("GET", b"/admin/rooms/", Route("list_rooms")),
    ("GET", b"/admin/rooms?x=1", Route("list_rooms")),
    ("GET", b"/admin/rooms/class-7b", Route("get_room", "class-7b")),
    ("GET", b"/admin/rooms/a%2Fb%20c", Route("get_room", "a/b c")),
    ("GET", b"/admin/rooms/%C3%BC", Route("get_room", "\u00fc")),
    ("POST", b"/admin/rooms/r/remove", Route("remove", "r")),
    ("POST", b"/admin/rooms/r/close", Route("close", "r")),
    ("POST", b"/admin/rooms/r/message", Route("message", "r")),
    ("PUT", b"/admin/rooms/r/deadline", Route("deadline", "r")),
    ("POST", b"/admin/rooms", WRONG_METHOD),
    ("DELETE", b"/admin/rooms/r", WRONG_METHOD),
    ("GET", b"/admin/rooms/r/remove", WRONG_METHOD),
    ("POST", b"/admin/rooms/r/deadline", WRONG_METHOD),
    ("GET", b"/admin", NOT_FOUND),
    ("GET", b"/admin/users", NOT_FOUND),
    ("POST", b"/admin/rooms/r/kick", NOT_FOUND),
    ("POST", b"/admin/rooms/r/remove/now", NOT_FOUND),
    ("GET", b"/admin/rooms/%FF", NOT_FOUND),  # not UTF-8: no room can have that name
    ("GET", b"/admin/rooms/%2F%2F/", Route("get_room", "//")),
])
def test_routes(method: str, path: bytes, route: Route) -> None:
    assert route_of(method, path) == route


@pytest.mark.parametrize(("header", "ok"), [
    (f"Bearer {KEY}", True), (None, False), ("", False), (KEY, False),
    (f"bearer {KEY}", False), (f"Bearer {KEY} ", False), (f"Bearer {KEY[:-1]}", False),
    ("Bearer ", False), (f"Basic {KEY}", False), ("Bearer \u00fc", False),
])
def test_the_key_is_a_bearer_token_compared_whole(header: str | None, ok: bool) -> None:
    assert authorized(header, KEY) is ok


def test_good_bodies_become_events() -> None:
    assert remove_event("c", "d", b'{"peer_id":"p"}') == RemovePeers(reply_to="c", room="d",
                                                                          peer="p")
    assert remove_event("c", "d", b'{"user":"u"}') == RemovePeers(reply_to="c", room="d", user="u")
    assert close_event("c", "d", b"") == close_event("c", "d", b" {} ") == RemoveAll(
        reply_to="c", room="d")
    assert message_event("c", "d", b'{"data":{"a":[1,2]},"peer_id":"p"}') == ServerMessage(
        reply_to="c", room="d", data=b'{"a":[1,2]}', peer="p")
    assert deadline_event("c", "d", b'{"ends_at":1900000000}') == SetDeadline(
        reply_to="c", room="d", ends_at=1_900_000_000_000)
    assert deadline_event("c", "d", b'{"ends_at":1900000000.25}').ends_at == 1_900_000_000_250
    assert deadline_event("c", "d", b'{"ends_at":null}').ends_at == 0
    assert deadline_event("c", "d", b'{"ends_at":1e300}').ends_at == 253_402_300_799_000


@pytest.mark.parametrize(("build", "body", "says"), [
    (remove_event, b"", "expected"),
    (remove_event, b"{}", "exactly one of peer_id and user"),
    (remove_event, b'{"peer_id":"a","user":"b"}', "exactly one"),
    (remove_event, b'{"peer_id":""}', "peer_id"),
    (remove_event, b'{"peer_id":"' + b"x" * 129 + b'"}', "peer_id"),
    (remove_event, b'{"peer":"a"}', "peer"),
    (remove_event, b"not json", "not JSON"),
    (message_event, b'{"data":"hi"}', "data"),
    (message_event, b'{"data":{},"peer_id":5}', "peer_id"),
    (message_event, b"x" * (65 * 1024), "larger than"),
    (deadline_event, b'{"ends_at":0}', "positive"),
    (deadline_event, b'{"ends_at":"2030-01-01"}', "ends_at"),
    (deadline_event, b'{"ends_at":true}', "ends_at"),
    (deadline_event, b"{}", "ends_at"),
    (close_event, b'{"reason":"x"}', "no body"),
])
def test_bad_bodies_say_what_is_wrong(build: object, body: bytes, says: str) -> None:
    with pytest.raises(BadRequest) as refused:
        build("c", "d", body)  # type: ignore[operator]
    assert says in str(refused.value)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(ACTIONS)), st.one_of(
    st.binary(max_size=200),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4)
                 | st.dictionaries(st.sampled_from(["peer_id", "user", "data", "ends_at", "x"]),
                                   inner, max_size=3), max_leaves=10).map(
        lambda value: __import__("json").dumps(value).encode())))
def test_any_body_is_an_event_or_a_bad_request(action: str, body: bytes) -> None:
    try:
        event = ACTIONS[action][1]("c", "d", body)
    except BadRequest as refused:
        assert str(refused)
    else:
        assert event.reply_to == "c" and event.room == "d"
