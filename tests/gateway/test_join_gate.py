"""The order of a socket's events while the app is asked about its joins
(gateway/join_gate.py)."""

from __future__ import annotations

import pytest

from gateway.join_gate import Admit, Waiting, admit, after_answer
from gateway.join_hook import HookRequest
from gateway.session import Forward
from shared.events import EMPTY_STATUS, Leave


def forward(name: str) -> Forward:
    return Forward(f"stream-{name}", Leave(conn=name, room="r"))


def ask(room: str) -> HookRequest:
    return HookRequest(room=room, peer_id="p", status=EMPTY_STATUS, origin=None, headers={})


# (something being asked about: what waits behind it, or None; the event is a join) -> admit
ADMIT = [
    (None, False, Admit.FORWARD),  # no join asked about: anything goes on at once
    (None, True, Admit.ASK),  # a join: the app first
    ([], False, Admit.QUEUE),  # behind a join being asked about: in the client's order
    ([], True, Admit.QUEUE),  # a second join waits its turn
    ([(forward("a"), None)], False, Admit.QUEUE),
]


@pytest.mark.parametrize(("waiting", "is_join", "expected"), ADMIT)
def test_admit(waiting: Waiting | None, is_join: bool, expected: Admit) -> None:
    assert admit(waiting, ask("room") if is_join else None) is expected


def test_after_an_answer_everything_waiting_goes_on_when_no_join_is_among_it() -> None:
    a, b = forward("a"), forward("b")
    assert after_answer([(a, None), (b, None)]) == ([a, b], None, None)
    assert after_answer([]) == ([], None, None)


def test_after_an_answer_what_follows_the_next_join_waits_for_its_own() -> None:
    a, join, b, join2, c = (forward(n) for n in ("a", "join", "b", "join2", "c"))
    first, second = ask("one"), ask("two")
    waiting: Waiting = [(a, None), (join, first), (b, None), (join2, second), (c, None)]
    now, following, rest = after_answer(waiting)
    assert (now, following, rest) == ([a], (join, first), [(b, None), (join2, second),
                                                           (c, None)])
    assert rest is not None
    now, following, rest = after_answer(rest)
    assert (now, following, rest) == ([b], (join2, second), [(c, None)])
    assert rest is not None
    assert after_answer(rest) == ([c], None, None)


def test_a_join_first_in_line_is_asked_next_with_nothing_behind_it_yet() -> None:
    join, request = forward("join"), ask("one")
    # Nothing behind it is still "asking" (an empty list), not "nothing asked" (None).
    assert after_answer([(join, request)]) == ([], (join, request), [])
