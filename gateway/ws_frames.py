"""WebSocket frames of the common case, parsed and built without websockets' machinery.

Almost every frame a signaling client sends is a small, complete, masked text frame, and
every frame the gateway sends is an unmasked text frame. websockets parses each frame
through a generator and a Frame object and serializes through another: tens of
microseconds per message in Python. Here the common case takes a few; anything else (a
close, a ping, a fragment, a frame breaking a rule or too big) is left to websockets from
that frame on, which answers it as RFC 6455 and docs/protocol.md say (1002, 1009...).
"""

from __future__ import annotations

from websockets.speedups import apply_mask

_TEXT, _BINARY, _PONG = 0x1, 0x2, 0xA
_FIN_TEXT = 0x81
_PONG_MAX = 125  # control frames carry at most 125 bytes (RFC 6455, 5.5)
# A server's ping with no payload: any answer from the client is enough (the idle timeout
# counts from the last complete frame heard, a pong as any other), so there is nothing to
# match pongs against.
PING = b"\x89\x00"


def _frame_at(buffer: bytes, pos: int, size: int) -> tuple[int, int] | None:
    """Where the frame starting at `pos` has its mask (or payload, if unmasked) and its
    payload's length; None while its header is incomplete."""
    second = buffer[pos + 1]
    length = second & 0x7F
    start = pos + 2
    if length == 126:
        if size - pos < 4:
            return None
        length = int.from_bytes(buffer[start:start + 2], "big")
        start += 2
    elif length == 127:
        if size - pos < 10:
            return None
        length = int.from_bytes(buffer[start:start + 8], "big")
        start += 8
    return start, length


def scan(buffer: bytes, max_size: int, messages: list[tuple[bool, bytes]],
         max_frames: int) -> tuple[int, bool, int]:
    """Append each complete data message at the start of `buffer` to `messages` as
    (is_text, payload), skipping pongs, and count the frames: at most `max_frames`.

    Returns how many bytes were used, whether the next frame is one to leave to
    websockets (else the bytes past what was used are the start of an incomplete frame),
    and how many complete frames there were: `max_frames + 1` when one more followed
    (it is neither used nor returned: the client is over its budget).
    Text payloads are returned as bytes: checking their UTF-8 is the caller's job.
    """
    pos, size, frames = 0, len(buffer), 0
    while size - pos >= 2:
        first, second = buffer[pos], buffer[pos + 1]
        opcode = first & 0x0F
        # FIN set, no RSV bits (no extension is negotiated), masked (a client's frame).
        if first & 0xF0 != 0x80 or not second & 0x80 or opcode not in (_TEXT, _BINARY, _PONG):
            return pos, True, frames
        found = _frame_at(buffer, pos, size)
        if found is None:
            break
        start, length = found
        if length > max_size or (opcode == _PONG and length > _PONG_MAX):
            return pos, True, frames
        end = start + 4 + length
        if end > size:
            break
        if frames == max_frames:
            return pos, False, frames + 1
        frames += 1
        if opcode != _PONG:
            payload = apply_mask(buffer[start + 4:end], buffer[start:start + 4])
            messages.append((opcode == _TEXT, payload))
        pos = end
    return pos, False, frames


class FrameCounter:
    """Counts the frames of a byte stream from their headers alone, whatever they are,
    across reads: what the gateway hands websockets is first counted here, so that a
    flood of frames is refused before anything parses it."""

    __slots__ = ("_head", "_skip")

    def __init__(self) -> None:
        self._head = b""  # the start of a header not complete yet
        self._skip = 0  # payload bytes of the last frame counted, still to come

    def count(self, data: bytes, max_frames: int) -> int:
        """How many frames begin in `data`: at most `max_frames + 1` (then it stops: the
        client is over its budget, and nothing more of it will be read)."""
        if self._head:
            data, self._head = self._head + data, b""
        size = len(data)
        pos = min(self._skip, size)
        self._skip -= pos
        frames = 0
        while size - pos >= 2:
            found = _frame_at(data, pos, size)
            if found is None:
                break
            start, length = found
            frames += 1
            if frames > max_frames:
                return frames
            end = start + (4 if data[pos + 1] & 0x80 else 0) + length
            if end > size:
                self._skip = end - size
                return frames
            pos = end
        self._head = data[pos:]
        return frames


def text_frame(payload: bytes) -> bytes:
    """A server's (unmasked) text frame carrying `payload`, which must be UTF-8."""
    length = len(payload)
    if length < 126:
        return bytes((_FIN_TEXT, length)) + payload
    if length < 65536:
        return bytes((_FIN_TEXT, 126)) + length.to_bytes(2, "big") + payload
    return bytes((_FIN_TEXT, 127)) + length.to_bytes(8, "big") + payload
