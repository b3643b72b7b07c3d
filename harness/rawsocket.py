"""A WebSocket client on a bare TCP stream, for what a polite client never does.

websockets' own client answers pings, reads in the background, refuses to send invalid
UTF-8 as text and never sends a frame past its peer's size limit. The tests of limits and
bad input need exactly those things, so this client does the framing (RFC 6455) itself:
a sans-I/O core (`encode_frame`, `FrameParser`) and two thin adapters, one for asyncio
(`RawSocket`) and one blocking (`BlockingSocket`, for hypothesis, which calls plain
functions).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from dataclasses import dataclass
from typing import Any

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CONTROL = {CLOSE, PING, PONG}
NO_STATUS = 1005  # a close frame without a code (RFC 6455, 7.1.5)
ABNORMAL = 1006  # the TCP connection ended without a close frame


def encode_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """One masked client frame, as RFC 6455 section 5.2 draws it."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    length = len(payload)
    if length < 126:
        head.append(0x80 | length)
    elif length < 1 << 16:
        head.append(0x80 | 126)
        head += struct.pack("!H", length)
    else:
        head.append(0x80 | 127)
        head += struct.pack("!Q", length)
    mask = os.urandom(4)
    head += mask
    # XOR with the repeated mask, done on big integers: fast for 64 KiB frames too.
    repeated = (mask * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        length, "big") if length else b""
    return bytes(head) + masked


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


@dataclass(frozen=True, slots=True)
class Frame:
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int:
        if self.opcode != CLOSE:
            raise ValueError("not a close frame")
        if len(self.payload) < 2:
            return NO_STATUS
        return int(struct.unpack("!H", self.payload[:2])[0])

    @property
    def close_reason(self) -> str:
        """A close frame's reason (RFC 6455, 5.5.1), "" when it has none."""
        if self.opcode != CLOSE:
            raise ValueError("not a close frame")
        return self.payload[2:].decode(errors="replace")

    def json(self) -> dict[str, Any]:
        """A text frame's JSON object (asserts it is one)."""
        assert self.opcode == TEXT, f"expected a text frame, got opcode {self.opcode}"
        decoded = json.loads(self.payload)
        assert isinstance(decoded, dict), decoded
        return decoded


class FrameParser:
    """Bytes from the server in, whole frames out (server frames are never masked)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def _next(self) -> Frame | None:
        while True:
            buffer = self._buffer
            if len(buffer) < 2:
                return None
            fin, opcode, length = buffer[0] & 0x80, buffer[0] & 0x0F, buffer[1] & 0x7F
            assert not buffer[1] & 0x80, "the server masked a frame"
            offset = 2
            if length == 126:
                if len(buffer) < 4:
                    return None
                length, offset = struct.unpack("!H", buffer[2:4])[0], 4
            elif length == 127:
                if len(buffer) < 10:
                    return None
                length, offset = struct.unpack("!Q", buffer[2:10])[0], 10
            if len(buffer) < offset + length:
                return None
            payload = bytes(buffer[offset:offset + length])
            del buffer[:offset + length]
            if opcode in CONTROL:
                return Frame(opcode, payload)
            if opcode != CONTINUATION:
                self._fragment_opcode = opcode
            self._fragments.append(payload)
            if fin:
                whole = b"".join(self._fragments)
                self._fragments = []
                return Frame(self._fragment_opcode, whole)


def _handshake_request(port: int, path: str) -> tuple[bytes, bytes]:
    key = base64.b64encode(os.urandom(16))
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    return request, key


def _check_handshake(response: bytes) -> None:
    status = response.split(b"\r\n", 1)[0]
    if b" 101 " not in status + b" ":
        raise ConnectionError(f"handshake refused: {response!r}")


class RawSocket:
    """An asyncio WebSocket client that reads only when told to and answers nothing."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 leftover: bytes) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = FrameParser()
        self.pending: list[Frame] = self.parser.feed(leftover)
        self.pings = 0  # ping frames seen so far
        self.close_code: int | None = None  # set once a close frame or EOF was read

    @classmethod
    async def connect(cls, port: int, path: str = "/", timeout: float = 5.0,
                      recv_buffer: int | None = None, behind: bytes = b"") -> RawSocket:
        """Open the TCP connection and do the opening handshake.

        `recv_buffer` shrinks the kernel's receive buffer (SO_RCVBUF) before connecting,
        so that a client that stops reading stops taking data soon. `behind` is written
        in the same write as the upgrade request (frames sent without waiting for 101).
        """
        sock = None
        if recv_buffer is not None:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
            sock.setblocking(False)
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)), timeout)
            reader, writer = await asyncio.open_connection(sock=sock)
        else:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), timeout)
        request, _ = _handshake_request(port, path)
        writer.write(request + behind)
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        _check_handshake(response)
        return cls(reader, writer, b"")

    @property
    def sock(self) -> socket.socket:
        return self.writer.get_extra_info("socket")  # type: ignore[no-any-return]

    def send(self, payload: bytes | str, opcode: int = TEXT, fin: bool = True) -> None:
        """Queue one frame (no drain: callers pipeline many, then `drain`)."""
        data = payload.encode() if isinstance(payload, str) else payload
        self.writer.write(encode_frame(opcode, data, fin))

    def send_json(self, **frame: Any) -> None:
        self.send(json.dumps(frame))

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are: several encoded frames at once."""
        self.writer.write(data)

    async def drain(self) -> None:
        await self.writer.drain()

    async def read_frame(self, timeout: float = 5.0) -> Frame:
        """The next frame of any kind; a close frame or EOF sets `close_code`."""
        while not self.pending:
            if self.close_code is not None:
                raise ConnectionError(f"connection closed ({self.close_code})")
            try:
                data = await asyncio.wait_for(self.reader.read(1 << 16), timeout)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                self.close_code = ABNORMAL
                return Frame(CLOSE, b"")  # no code: what an abnormal end looks like
            self.pending = self.parser.feed(data)
        frame = self.pending.pop(0)
        if frame.opcode == PING:
            self.pings += 1
        elif frame.opcode == CLOSE:
            self.close_code = frame.close_code if frame.payload else ABNORMAL
            if frame.payload:  # a close frame, not EOF: complete the closing handshake
                try:
                    self.writer.write(encode_frame(CLOSE, frame.payload[:2]))
                except (ConnectionError, RuntimeError):
                    pass
        return frame

    async def read_message(self, timeout: float = 5.0) -> Frame:
        """The next text, binary or close frame; pings are counted and left unanswered."""
        while True:
            frame = await self.read_frame(timeout)
            if frame.opcode not in (PING, PONG):
                return frame

    async def expect_json(self, timeout: float = 5.0) -> dict[str, Any]:
        return (await self.read_message(timeout)).json()

    async def closed_with(self, timeout: float = 5.0) -> int:
        """Read (and drop) everything until the server closes; return the close code."""
        while self.close_code is None:
            await self.read_frame(timeout)
        return self.close_code

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    async def flood(self, data: bytes, until: float, limit: int | None = None) -> int:
        """Write `data` again and again, each time once the last has drained, until the
        monotonic time `until`, `limit` bytes, or the connection fails or closes; read
        nothing.
        Return the bytes handed to the kernel (written, less what still waits)."""
        written = 0
        loop = asyncio.get_running_loop()
        try:
            while loop.time() < until and (limit is None or written < limit) and \
                    not self.writer.is_closing():
                chunk = data if limit is None else data[:limit - written]
                self.writer.write(chunk)
                written += len(chunk)
                await asyncio.wait_for(self.writer.drain(), max(until - loop.time(), 0.001))
        except (ConnectionError, OSError, RuntimeError, TimeoutError):
            pass  # closed by the server (how a flood should end), or still blocked at `until`
        return written - self.writer.transport.get_write_buffer_size()

    def abort(self) -> None:
        """Drop the TCP connection at once (RST), whatever waits to be written."""
        self.writer.transport.abort()


class BlockingSocket:
    """The same client on a blocking socket: for code that cannot await (hypothesis)."""

    def __init__(self, port: int, path: str = "/", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = FrameParser()
        self.pending: list[Frame] = []
        self.close_code: int | None = None
        request, _ = _handshake_request(port, path)
        self.sock.sendall(request)
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            response += chunk
        head, _, rest = response.partition(b"\r\n\r\n")
        _check_handshake(head + b"\r\n\r\n")
        self.pending = self.parser.feed(rest)

    def send(self, payload: bytes | str, opcode: int = TEXT) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self.sock.sendall(encode_frame(opcode, data))

    def read_message(self, timeout: float = 5.0) -> Frame:
        """The next text, binary or close frame (pings are skipped, unanswered)."""
        self.sock.settimeout(timeout)
        while True:
            while not self.pending:
                if self.close_code is not None:
                    raise ConnectionError(f"connection closed ({self.close_code})")
                try:
                    data = self.sock.recv(1 << 16)
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                if not data:
                    self.close_code = ABNORMAL
                    return Frame(CLOSE, b"")
                self.pending = self.parser.feed(data)
            frame = self.pending.pop(0)
            if frame.opcode == CLOSE:
                self.close_code = frame.close_code if frame.payload else ABNORMAL
                return frame
            if frame.opcode not in (PING, PONG):
                return frame

    def close(self) -> None:
        self.sock.close()
