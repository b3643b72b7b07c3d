"""The browser library's pure parts, run by Node.js (which the tests install): how ICE
servers are chosen from joined_room, and what palava-client is given of them."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from harness.processes import ROOT

SCRIPT = """
import { iceServersFor } from './gateway/client/ice-servers.js';
import { palavaIceOptions } from './gateway/demo_page/palava-resume.js';
const configured = [{ urls: 'stun:mine.example:3478' },
                    { urls: ['turn:mine.example:3478', 'turns:mine.example:5349'] },
                    { urls: 'turn:other.example', username: 'own', credential: 'own' }];
const served = [{ urls: ['stun:s.example'] },
                { urls: ['turn:t.example'], username: 'u', credential: 'p' }];
console.log(JSON.stringify({
  served: iceServersFor({ ice_servers: served, turn_user: 'u', turn_password: 'p' }, configured),
  credentials: iceServersFor({ turn_user: '9:peer', turn_password: 'pw' }, configured),
  nothing: iceServersFor({}, configured),
  palava: palavaIceOptions(served),
  palavaNone: palavaIceOptions(undefined),
}));
"""


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None, "node is missing: scripts/test installs it"
    done = subprocess.run([node, "--input-type=module", "-e", SCRIPT], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def test_the_servers_ice_servers_win(results: dict[str, Any]) -> None:
    assert results["served"] == [{"urls": ["stun:s.example"]},
                                 {"urls": ["turn:t.example"], "username": "u",
                                  "credential": "p"}]


def test_turn_credentials_go_to_configured_turn_servers_without_their_own(
        results: dict[str, Any]) -> None:
    assert results["credentials"] == [
        {"urls": "stun:mine.example:3478"},
        {"urls": ["turn:mine.example:3478", "turns:mine.example:5349"],
         "username": "9:peer", "credential": "pw"},
        {"urls": "turn:other.example", "username": "own", "credential": "own"},
    ]
    assert results["nothing"][1] == {"urls": ["turn:mine.example:3478",
                                              "turns:mine.example:5349"]}


def test_palava_client_gets_one_stun_url_and_the_turn_urls(results: dict[str, Any]) -> None:
    assert results["palava"] == {"stun": "stun:s.example", "turnUrls": ["turn:t.example"]}
    assert results["palavaNone"] == {}
