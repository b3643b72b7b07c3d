"""The attacks' pure parts: the frames that must fail a connection, and how the endings
of a socket are counted."""

from __future__ import annotations

import pytest
from websockets.frames import Close
from websockets.protocol import State
from websockets.server import ServerProtocol

from bench.attacks import PROTOCOL_ERRORS, Ending, tally


@pytest.mark.parametrize("trigger", sorted(PROTOCOL_ERRORS))
def test_each_trigger_fails_a_websocket_with_1002(trigger: str) -> None:
    """websockets' own server, fed each frame, fails the connection with 1002."""
    server = ServerProtocol(state=State.OPEN)
    server.receive_data(PROTOCOL_ERRORS[trigger])
    sent = b"".join(server.data_to_send())
    assert server.close_sent is not None and server.close_sent.code == 1002, trigger
    assert sent[0] == 0x88 and Close.parse(sent[2:]).code == 1002


def test_tally_counts_codes_and_reasons_and_the_slowest_close() -> None:
    counted = tally([Ending("1008", "too many frames", 0.2), Ending("1008", "too many frames",
                     0.5), Ending("1006", "", 0.4), Ending("open")])
    assert counted == {"codes": {"1008": 2, "1006": 1, "open": 1},
                       "reasons": {"too many frames": 2}, "first_close_s": 0.2,
                       "last_close_s": 0.5}
