"""A socket's frames while the app is asked about its join (docs/protocol.md, "Join
hook"): the join, and whatever the client sends after it, wait for the answer and then
go on in order; a later join among them is asked about in its turn.

The order is decided by two pure functions (`admit`, `after_answer`); `JoinGate` asks
the hook and hands each event on.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from enum import Enum
from typing import Any

from msgspec.structs import replace

from gateway.join_hook import HookRequest, JoinHook
from gateway.session import Forward
from gateway.socket import Socket
from shared.events import Join, JoinRefused
from shared.frames import ErrorText, error_frame

# What waits behind a join being asked about: each event, with the hook request of the
# joins among them (None for anything else).
Waiting = list[tuple[Forward, HookRequest | None]]


class Admit(Enum):
    FORWARD = "forward"  # nothing is being asked: it goes on at once
    ASK = "ask"  # a join: the app is asked first, and what follows waits
    QUEUE = "queue"  # behind a join being asked about: it waits its turn


def admit(waiting: Waiting | None, request: HookRequest | None) -> Admit:
    """What to do with an event of a socket whose joins the app is asked about:
    `waiting` is what waits behind the join being asked about (None when none is),
    `request` the hook request if the event is a join."""
    if waiting is not None:
        return Admit.QUEUE
    return Admit.FORWARD if request is None else Admit.ASK


def after_answer(waiting: Waiting) -> tuple[list[Forward], tuple[Forward, HookRequest] | None,
                                            Waiting | None]:
    """The app answered: what goes on now (everything up to the next join), the next
    join to ask about if there is one, and what waits behind that join (None if none
    is asked about)."""
    for index, (forward, request) in enumerate(waiting):
        if request is not None:
            return ([earlier for earlier, _ in waiting[:index]], (forward, request),
                    waiting[index + 1:])
    return [forward for forward, _ in waiting], None, None


class JoinGate:
    """Asks the app's join hook before a join goes on; hands every event, in the
    client's order, to `forward`."""

    def __init__(self, hook: JoinHook, forward: Callable[[Socket, Forward], None],
                 spawn: Callable[[Coroutine[Any, Any, None]], None]) -> None:
        self.hook = hook
        self.forward = forward
        self.spawn = spawn

    def route(self, socket: Socket, forward: Forward) -> None:
        request = None
        if type(forward.event) is Join:
            room, token = socket.session.join_request
            origin, headers = socket.connection.hook_request or (None, {})
            request = HookRequest(room=room, peer_id=forward.event.conn,
                                  status=forward.event.status, origin=origin,
                                  headers=headers, token=token)
        action = admit(socket.hook_queue, request)
        if action is Admit.QUEUE:
            assert socket.hook_queue is not None
            socket.hook_queue.append((forward, request))
        elif action is Admit.ASK:
            assert request is not None
            socket.hook_queue = []
            self.spawn(self._ask(socket, forward, request))
        else:
            self.forward(socket, forward)

    async def _ask(self, socket: Socket, forward: Forward, request: HookRequest) -> None:
        """Ask the app about `forward`'s join; then go on with what waited behind it."""
        while True:
            identity = await self.hook.ask(request)
            if socket.closed:
                socket.hook_queue = None
                return  # closed meanwhile: its join never went out, so nothing need leave
            join = forward.event
            assert isinstance(join, Join)
            if identity is None:
                socket.session.join_refused(JoinRefused(seq=join.seq))
                socket.outbox.push(error_frame(ErrorText.NOT_ALLOWED, "join_room"))
            else:
                # The app's answer takes the place of a token's claims.
                self.forward(socket, Forward(forward.stream, replace(
                    join, user=identity.user, info=identity.info, host=identity.host,
                    ends_at=identity.ends_at)))
            now, following, socket.hook_queue = after_answer(socket.hook_queue or [])
            for event in now:
                self.forward(socket, event)
            if following is None:
                return
            forward, request = following
