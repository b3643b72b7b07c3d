"""WebSocket frames of the common case, parsed and built without websockets' machinery.

Almost every frame a signaling client sends is a small, complete, masked text frame, and
every frame the gateway sends is an unmasked text frame. websockets parses each frame
through a generator and a Frame object and serializes through another: tens of
microseconds per message in Python. Here the common case takes a few; anything else (a
close, a ping, a fragment, a frame breaking a rule or too big) is left to websockets from
that frame on, which answers it as RFC 6455 and protocol.md say (1002, 1009...).
"""

from __future__ import annotations

from websockets.speedups import apply_mask

_TEXT, _BINARY, _PONG = 0x1, 0x2, 0xA
_FIN_TEXT = 0x81
_PONG_MAX = 125  # control frames carry at most 125 bytes (RFC 6455, 5.5)
# A server's ping with no payload: any answer from the client is enough (the idle timeout
# counts from the last bytes heard), so there is nothing to match pongs against.
PING = b"\x89\x00"


def scan(buffer: bytes, max_size: int, messages: list[tuple[bool, bytes]]) -> tuple[int, bool]:
    """Append each complete data message at the start of `buffer` to `messages` as
    (is_text, payload), skipping pongs.

    Returns how many bytes were used and whether the next frame is one to leave to
    websockets (else the bytes past what was used are the start of an incomplete frame).
    Text payloads are returned as bytes: checking their UTF-8 is the caller's job.
    """
    pos, size = 0, len(buffer)
    while size - pos >= 2:
        first, second = buffer[pos], buffer[pos + 1]
        opcode = first & 0x0F
        # FIN set, no RSV bits (no extension is negotiated), masked (a client's frame).
        if first & 0xF0 != 0x80 or not second & 0x80 or opcode not in (_TEXT, _BINARY, _PONG):
            return pos, True
        length = second & 0x7F
        start = pos + 2
        if length == 126:
            if size - pos < 4:
                break
            length = int.from_bytes(buffer[start:start + 2], "big")
            start += 2
        elif length == 127:
            if size - pos < 10:
                break
            length = int.from_bytes(buffer[start:start + 8], "big")
            start += 8
        if length > max_size or (opcode == _PONG and length > _PONG_MAX):
            return pos, True
        end = start + 4 + length
        if end > size:
            break
        if opcode != _PONG:
            payload = apply_mask(buffer[start + 4:end], buffer[start:start + 4])
            messages.append((opcode == _TEXT, payload))
        pos = end
    return pos, False


def text_frame(payload: bytes) -> bytes:
    """A server's (unmasked) text frame carrying `payload`, which must be UTF-8."""
    length = len(payload)
    if length < 126:
        return bytes((_FIN_TEXT, length)) + payload
    if length < 65536:
        return bytes((_FIN_TEXT, 126)) + length.to_bytes(2, "big") + payload
    return bytes((_FIN_TEXT, 127)) + length.to_bytes(8, "big") + payload
