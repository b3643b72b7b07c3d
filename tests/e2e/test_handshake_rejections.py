"""Refused handshakes (gateway/ws_upgrade.py), over raw TCP: each gets its status line and
one log line at INFO, never a traceback; and what a client sent reaches a plain log with its
control characters escaped (shared/logs.py), while JSON lines stay JSON."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import pytest

from harness.processes import Cluster, Process, http_get

ALLOWED = "https://app.example.com"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455, 1.3
# A log line's start in the text format: its time, then its level.
LINE_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) ", re.M)


def upgrade(path: str = "/", key: str = KEY, headers: bytes = b"") -> bytes:
    """A handshake request, with `headers` added after the usual ones."""
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n").encode() + headers + b"\r\n"


CLOSE_FRAME = b"\x88\x80\x00\x00\x00\x00"  # masked, with no code
LONG_LINE = b"X-Long: " + b"a" * 9000 + b"\r\n"
LONG_URL = "/?" + "a" * 9000
# Each refusal: the request, in the pieces it is sent in (a pause between them, so that the
# gateway reads them apart), and the status it gets.
REFUSALS: dict[str, tuple[list[bytes], int]] = {
    "header line too long": ([upgrade(headers=LONG_LINE)], 413),
    "header line too long, in two reads": (
        [upgrade(headers=LONG_LINE)[:8500], upgrade(headers=LONG_LINE)[8500:]], 413),
    "URL too long": ([upgrade(LONG_URL)], 414),
    "URL too long, in two reads": ([upgrade(LONG_URL)[:4000], upgrade(LONG_URL)[4000:]], 414),
    "too many headers": ([upgrade(headers=b"".join(b"X-H%d: v\r\n" % i for i in range(200)))],
                         431),
    "bad Sec-WebSocket-Key": ([upgrade(key="not-a-key")], 400),
    "two Origin headers": ([upgrade(headers=f"Origin: {ALLOWED}\r\nOrigin: {ALLOWED}\r\n"
                                    .encode())], 400),
    "two Host headers": ([upgrade(headers=b"Host: 127.0.0.1\r\n")], 400),
    "control character in a header": ([upgrade(headers=b"X-Note: \x1b[31m\r\n")], 400),
    "plain HTTP, head too large": ([b"GET /healthz HTTP/1.1\r\nHost: h\r\n" + LONG_LINE
                                    + b"\r\n"], 413),
    # Sanic would answer nothing (it parses the URL again to say why: sanic-org/sanic#2735).
    "plain HTTP, control character in the URL": (
        [b"GET /nothere\x1b[31m HTTP/1.1\r\nHost: h\r\n\r\n"], 400),
}


@pytest.fixture(scope="module")
def gateways(cluster: Cluster) -> Iterator[dict[str, tuple[Process, int]]]:
    """On the shared cluster: one gateway with an allow-list of origins and one without,
    logging at INFO; two logging at DEBUG (where websockets logs the request it read), one
    in each format."""
    started = {
        "allow-list": cluster.start_gateway(SWITCHBOARD_ALLOWED_ORIGINS=ALLOWED),
        "no allow-list": cluster.start_gateway(),
        "text": cluster.start_gateway(LOG_LEVEL="debug", SWITCHBOARD_LOG_FORMAT="text"),
        "json": cluster.start_gateway(LOG_LEVEL="debug", SWITCHBOARD_LOG_FORMAT="json"),
    }
    yield started
    for process, port in started.values():
        assert process.stop() == 0
        cluster.gateways.remove((process, port))


async def send(port: int, pieces: list[bytes]) -> bytes:
    """Send a request in `pieces` and read the answer until the gateway closes; once this
    returns, the gateway has also logged whatever it logs for the request (a GET of /healthz
    after it, on the same event loop, is answered after that)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for index, piece in enumerate(pieces):
            if index:
                await asyncio.sleep(0.2)
            writer.write(piece)
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    status, _, _ = await asyncio.to_thread(http_get, port, "/healthz")
    assert status == 200
    return answer


def status_line(answer: bytes) -> bytes:
    return answer.split(b"\r\n", 1)[0]


async def assert_refused_in_one_line(gateway: tuple[Process, int], pieces: list[bytes],
                                     status: int) -> None:
    """The gateway answers the request in `pieces` with `status`, and logs one line for it,
    at INFO or WARNING, and no traceback."""
    process, port = gateway
    offset = len(process.log())
    answer = await send(port, pieces)
    assert status_line(answer).startswith(b"HTTP/1.1 %d " % status), answer[:200]
    logged = process.log()[offset:]
    assert "Traceback" not in logged
    lines = logged.splitlines()
    assert len(lines) == 1, logged
    match = LINE_START.match(lines[0])
    assert match and match["level"] in {"INFO", "WARNING"}, lines[0]
    assert f"({status} " in lines[0]


@pytest.mark.parametrize("gateway", ["allow-list", "no allow-list"])
@pytest.mark.parametrize("refusal", REFUSALS)
async def test_a_refusal_gets_its_status_and_one_log_line(
        gateways: dict[str, tuple[Process, int]], gateway: str, refusal: str) -> None:
    await assert_refused_in_one_line(gateways[gateway], *REFUSALS[refusal])


@pytest.mark.parametrize("gateway", ["allow-list", "no allow-list"])
async def test_a_keep_alive_request_with_a_control_character_in_its_url_gets_400(
        gateways: dict[str, tuple[Process, int]], gateway: str) -> None:
    """The connection's first request is answered by Sanic, so the second is Sanic's to
    parse too: it answers 400 and logs one line (it once answered nothing and logged a
    traceback of 43 lines)."""
    process, port = gateways[gateway]
    offset = len(process.log())
    answer = await send(port, [b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n",
                               b"GET /nothere\x1b[31m HTTP/1.1\r\nHost: h\r\n\r\n"])
    first, _, rest = answer.partition(b'{"ok":true}')
    assert status_line(first) == b"HTTP/1.1 200 OK"
    assert status_line(rest) == b"HTTP/1.1 400 Bad Request", answer
    logged = process.log()[offset:]
    assert "Traceback" not in logged and b"\x1b" not in logged.encode(), logged
    lines = logged.splitlines()
    assert len(lines) == 1 and "(400 " in lines[0], logged
    match = LINE_START.match(lines[0])
    assert match and match["level"] == "INFO", lines[0]


@pytest.mark.parametrize("origin", ["https://evil.example.com", "null"])
async def test_an_origin_off_the_allow_list_gets_403_and_one_log_line(
        gateways: dict[str, tuple[Process, int]], origin: str) -> None:
    await assert_refused_in_one_line(
        gateways["allow-list"], [upgrade(headers=f"Origin: {origin}\r\n".encode())], 403)


async def test_an_accepted_handshake_logs_one_line_too(
        gateways: dict[str, tuple[Process, int]]) -> None:
    process, port = gateways["allow-list"]
    offset = len(process.log())
    answer = await send(port, [upgrade(headers=f"Origin: {ALLOWED}\r\n".encode())
                               + CLOSE_FRAME])
    assert status_line(answer) == b"HTTP/1.1 101 Switching Protocols"
    logged = process.log()[offset:]
    assert "Traceback" not in logged and "connection open" in logged, logged


# What a client may put in front of a terminal: CSI sequences, BEL, backspace, DEL, a
# carriage return that would overwrite the line's start.
CONTROLS = "\x1b[31mred\x1b[0m\x07\x08\x7f\r"
TEXT_REQUESTS = [
    # A handshake: websockets logs its request line at DEBUG, and accepts it.
    upgrade("/?note=" + CONTROLS.replace("\r", "")) + CLOSE_FRAME,
    # Not HTTP: websockets logs why at DEBUG (a traceback with the header's value).
    upgrade(headers=f"X-Note: {CONTROLS}\r\n".encode()),
    # Sanic's: its error for a URL httptools refuses repeats the URL.
    f"GET /nothere{CONTROLS.replace(chr(13), '')} HTTP/1.1\r\nHost: h\r\n\r\n".encode(),
]


async def logged_for(gateway: tuple[Process, int], requests: list[bytes]) -> bytes:
    """What the gateway logged while it answered `requests`, as it wrote it."""
    process, port = gateway
    offset = len(process.log_path.read_bytes())
    for request in requests:
        await send(port, [request])
    return process.log_path.read_bytes()[offset:]


async def test_client_text_reaches_a_text_log_escaped(
        gateways: dict[str, tuple[Process, int]]) -> None:
    logged = await logged_for(gateways["text"], TEXT_REQUESTS)
    assert b"\\x1b[31mred\\x1b[0m\\x07\\x08\\x7f" in logged
    for control in (b"\x1b", b"\x07", b"\x08", b"\x7f", b"\r"):
        assert control not in logged, logged.decode(errors="replace")


async def test_client_text_in_a_json_log_is_json(
        gateways: dict[str, tuple[Process, int]]) -> None:
    logged = await logged_for(gateways["json"], TEXT_REQUESTS)
    assert b"\x1b" not in logged  # JSON escapes it: \u001b
    records = [json.loads(line) for line in logged.decode().splitlines()]
    carried = " ".join(record["message"] + record.get("exception", "") for record in records)
    assert "\x1b[31mred\x1b[0m" in carried  # as the client sent it, once decoded
