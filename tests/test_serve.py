"""`scripts/serve --gateways N --relays M`: a local multi-process deployment
behind the URLs it prints, stopped with everything it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

from harness.processes import ROOT, http_get
from tests.peers import Peer


def free_run_of_ports(count: int) -> int:
    """A port P such that P .. P+count-1 are free now."""
    for base in range(20000 + os.getpid() % 20000, 60000, 97):
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                sockets.append(sock)
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no run of free ports")


async def test_serve_runs_gateways_and_relays_behind_the_urls_it_prints() -> None:
    base = free_run_of_ports(4)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",
                                                            "SWITCHBOARD_METRICS_PORT")}
    serve = subprocess.Popen([str(ROOT / "scripts" / "serve"), "--gateways", "2",
                              "--relays", "2"], env={**env, "PORT": str(base)}, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert serve.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = serve.stdout.readline()
            assert line, "scripts/serve ended:\n" + "".join(lines)
            lines.append(line)
            if line.startswith("Ctrl-C stops it."):
                break
        output = "".join(lines)
        gateways = [int(port) for port in re.findall(r"gateway: ws://127\.0\.0\.1:(\d+)/",
                                                    output)]
        relays = [int(port) for port in re.findall(r"relay:   http://127\.0\.0\.1:(\d+)/",
                                                  output)]
        assert gateways == [base, base + 1] and relays == [base + 2, base + 3], output
        for port in gateways + relays:
            assert http_get(port, "/readyz")[0] == 200
            assert "switchboard_" in http_get(port, "/metrics")[2]
        # One room across both gateways.
        a = await Peer.connect(f"ws://127.0.0.1:{gateways[0]}/")
        b = await Peer.connect(f"ws://127.0.0.1:{gateways[1]}/")
        await a.join("serve-test")
        await b.join("serve-test")
        await a.expect("new_peer")
        await b.send(event="send_to_peer", peer_id=a.id, data={"event": "message", "n": 1})
        assert (await a.expect("message"))["n"] == 1
        await a.close()
        await b.close()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
    # Everything it started has stopped.
    for port in gateways + relays:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                raise AssertionError(f"port {port} still answers")
        except OSError:
            pass
