"""A network namespace whose only interface is loopback, for a browser under test.

WebRTC gathers ICE candidates on every interface: two Chromium pages on one machine would
call each other over its LAN address. In this namespace the only interface is `lo`, so
whatever the browser sends (ICE checks, media, the STUN request palava-client insists on)
goes to a loopback address and stays on the machine. Bridges make chosen ports of the
host's 127.0.0.1 (the gateways) reachable at 127.0.0.1 inside, as a load balancer would:
each bridge can be cut (the browser loses its connections) or pointed at another port.

Needs root (unshare, nsenter, setns), which the test command has.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

CLONE_NEWNET = 0x40000000


@dataclass
class Bridge:
    """Connections to 127.0.0.1:`port` inside the namespace go to 127.0.0.1:`target`."""

    port: int
    target: int
    server: asyncio.Server | None = None
    # Both ends of every connection going through.
    streams: set[asyncio.StreamWriter] = field(default_factory=set)
    down_until = 0.0  # loop time: until then, new connections are dropped at once

    def cut(self) -> None:
        """Drop every connection going through now, as a network failure would; new
        connections are accepted as before."""
        for stream in list(self.streams):
            stream.transport.abort()

    def outage(self, seconds: float) -> None:
        """The network is gone for `seconds`: every connection is dropped now, and those
        tried meanwhile are reset as they come."""
        self.down_until = asyncio.get_running_loop().time() + seconds
        self.cut()

    async def accepted(self, inside_reader: asyncio.StreamReader,
                       inside_writer: asyncio.StreamWriter) -> None:
        if asyncio.get_running_loop().time() < self.down_until:
            inside_writer.transport.abort()
            return
        try:
            outside_reader, outside_writer = await asyncio.open_connection("127.0.0.1",
                                                                           self.target)
        except OSError:
            inside_writer.close()  # as if nothing listened: the browser's connection fails
            return
        ends = {inside_writer, outside_writer}
        self.streams |= ends
        try:
            async with asyncio.TaskGroup() as pipes:
                pipes.create_task(_copy(inside_reader, outside_writer))
                pipes.create_task(_copy(outside_reader, inside_writer))
        except* OSError:
            pass  # one side reset the connection: the other is closed below
        finally:
            self.streams -= ends
            for writer in ends:
                writer.close()


class LoopbackNamespace:
    """A namespace held open by one `cat` process; `close()` ends it and its bridges."""

    def __init__(self, holder: subprocess.Popen[bytes]) -> None:
        self.holder = holder
        self.path = f"/proc/{holder.pid}/ns/net"
        self.bridges: dict[int, Bridge] = {}

    @classmethod
    def create(cls) -> LoopbackNamespace:
        holder = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && echo up && exec cat"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert holder.stdout is not None
        # The line comes once lo is up, or EOF at once if unshare or ip failed.
        if holder.stdout.readline() != b"up\n":
            _, errors = holder.communicate(timeout=10)
            raise RuntimeError(f"cannot make a network namespace: {errors.decode().strip()}")
        return cls(holder)

    def command(self, *argv: str) -> list[str]:
        """`argv`, to be run inside the namespace."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def wrapper(self, directory: Path, executable: str) -> Path:
        """A script that runs `executable` inside the namespace with the arguments given."""
        script = directory / f"{Path(executable).name}-in-netns"
        script.write_text(f'#!/bin/sh\nexec {" ".join(self.command(executable))} "$@"\n')
        script.chmod(0o755)
        return script

    async def bridge(self, port: int, target: int | None = None) -> Bridge:
        """Serve 127.0.0.1:`port` inside, forwarding to the host's 127.0.0.1:`target`
        (default: the same port)."""
        listener = await asyncio.to_thread(self._listen_inside, port)
        bridge = Bridge(port, port if target is None else target)
        bridge.server = await asyncio.start_server(bridge.accepted, sock=listener)
        self.bridges[port] = bridge
        return bridge

    def _listen_inside(self, port: int) -> socket.socket:
        """A listening socket made inside the namespace (a socket keeps the namespace it was
        made in). setns moves only the calling thread, so a thread of its own does it."""
        made: list[socket.socket] = []
        failed: list[BaseException] = []

        def work() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        errno = ctypes.get_errno()
                        raise OSError(errno, f"setns: {os.strerror(errno)}")
                finally:
                    os.close(fd)
                made.append(socket.create_server(("127.0.0.1", port)))
            except BaseException as exc:  # handed to the caller below
                failed.append(exc)

        thread = threading.Thread(target=work, name=f"netns-listen-{port}")
        thread.start()
        thread.join()
        if failed:
            raise failed[0]
        return made[0]

    async def close(self) -> None:
        for bridge in self.bridges.values():
            if bridge.server is not None:
                bridge.server.close()
            bridge.cut()
        if self.holder.stdin is not None:
            self.holder.stdin.close()  # cat ends, and the namespace with it
        await asyncio.to_thread(self.holder.wait, 10)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(64 * 1024):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof() and not writer.is_closing():
        writer.write_eof()
