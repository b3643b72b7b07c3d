"""The small HTTP server of the health and admin ports (shared/http_port.py), over real
loopback sockets: a handler's answer, and every malformed or oversized request refused
with its status and no call to the handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from shared.http_port import HEAD_BYTES, Request, Response, serve_http_port

MAX_BODY = 100


async def _exchange(port: int, raw: bytes) -> tuple[int, bytes, bytes]:
    """Send `raw`, read the whole answer: status, head, body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), head, body


async def _send_then_end(port: int, raw: bytes) -> bytes:
    """Send `raw`, end the sending side, read whatever answer comes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[Request]]]:
    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        return Response(201, b'{"got":%d}' % len(request.body), b"application/x")

    served = await serve_http_port("127.0.0.1", 0, handler, max_body=MAX_BODY)
    port = served.sockets[0].getsockname()[1]
    yield port, seen
    served.close()


async def test_the_handler_answers_with_its_status_body_and_type(
        server: tuple[int, list[Request]]) -> None:
    port, seen = server
    status, head, body = await _exchange(
        port, b"POST /x?y HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer k\r\n"
              b"Content-Length: 3\r\n\r\nabc")
    assert (status, body) == (201, b'{"got":3}')
    assert b"Content-Type: application/x" in head and b"Connection: close" in head
    assert seen == [Request("POST", b"/x?y", {b"host": b"a", b"authorization": b"Bearer k",
                                              b"content-length": b"3"}, b"abc")]


REFUSED = [
    (b"GET /\r\n\r\n", 400, "not an HTTP/1.1 request"),
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400, "malformed header"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "send a Content-Length"),
    (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400, "bad Content-Length"),
    (b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413, "body larger than 100 bytes"),
    (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 413, "body larger than 100 bytes"),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * HEAD_BYTES + b"\r\n\r\n", 431,
     "request head too large"),
]


@pytest.mark.parametrize(("raw", "status", "text"), REFUSED)
async def test_a_bad_request_is_refused_before_the_handler(
        server: tuple[int, list[Request]], raw: bytes, status: int, text: str) -> None:
    port, seen = server
    got, _, body = await _exchange(port, raw)
    assert (got, orjson.loads(body)) == (status, {"error": text})
    assert seen == []


async def test_a_request_cut_short_is_dropped_and_the_port_serves_on(
        server: tuple[int, list[Request]]) -> None:
    port, seen = server
    answer = await _send_then_end(port, b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    assert answer == b""  # closed, nothing answered
    assert (await _exchange(port, b"GET / HTTP/1.1\r\n\r\n"))[0] == 201
    assert len(seen) == 1


@pytest.fixture
async def probe_port() -> AsyncIterator[tuple[int, list[Request]]]:
    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        return Response(200, b"{}")

    served = await serve_http_port("127.0.0.1", 0, handler, line_only=True)
    yield served.sockets[0].getsockname()[1], seen
    served.close()


PROBES = [
    b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",  # what Kubernetes sends
    b"GET /healthz HTTP/1.0\n\n",  # printf ... | nc
    b"GET /healthz\n",  # no version at all
    b"GET /healthz HTTP/1.1\r\nno colon\r\n\r\n",  # headers are not read
    b"POST /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",  # nor a body
]


@pytest.mark.parametrize("raw", PROBES)
async def test_a_probe_port_answers_on_the_request_line(
        probe_port: tuple[int, list[Request]], raw: bytes) -> None:
    port, seen = probe_port
    assert (await _exchange(port, raw))[0] == 200
    assert [request.target for request in seen] == [b"/healthz"]


async def test_a_probe_port_answers_a_line_the_client_ended_without_a_newline(
        probe_port: tuple[int, list[Request]]) -> None:
    port, seen = probe_port
    answer = await _send_then_end(port, b"GET /healthz HTTP/1.0")
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert len(seen) == 1


@pytest.mark.parametrize(("raw", "status"), [(b"GARBAGE\n", 400),
                                             (b"GET /" + b"a" * HEAD_BYTES + b"\n", 414)])
async def test_a_probe_port_refuses_what_is_no_request_line(
        probe_port: tuple[int, list[Request]], raw: bytes, status: int) -> None:
    port, seen = probe_port
    assert (await _exchange(port, raw))[0] == status
    assert seen == []
