"""The browser library's pure parts, run by Node.js (which the tests install): how ICE
servers are chosen from joined_room, what palava-client is given of them, the one JSON
guard and the backoff. The demo imports the library as `/client/switchboard.js`, as a
page would: a resolve hook maps that to browser/client/, as a gateway serves it."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from harness.processes import ROOT

# The demo imports `/client/switchboard.js` as a page of the gateway's would: this resolve
# hook (module.register, Node >= 20.6) finds it in browser/client/, as a gateway serves it.
RESOLVE_HOOK = """
const served = new URL('./', 'BROWSER/');
export async function resolve(specifier, context, next) {
  return next(specifier.startsWith('/client/') ? new URL('.' + specifier, served).href
    : specifier, context);
}
""".replace("BROWSER", (ROOT / "browser").as_uri())

SCRIPT = """
import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(HOOK));
const { iceServersFor } = await import('./browser/client/ice-servers.js');
const { parseObject } = await import('./browser/client/json.js');
const { Backoff } = await import('./browser/client/backoff.js');
const { palavaIceOptions } = await import('./browser/demo/palava-resume.js');
const configured = [{ urls: 'stun:mine.example:3478' },
                    { urls: ['turn:mine.example:3478', 'turns:mine.example:5349'] },
                    { urls: 'turn:other.example', username: 'own', credential: 'own' }];
const served = [{ urls: ['stun:s.example'] },
                { urls: ['turn:t.example'], username: 'u', credential: 'p' }];
const backoff = new Backoff(100, 1000);
const delays = Array.from({ length: 6 }, () => backoff.next());
backoff.reset();
delays.push(backoff.next());
console.log(JSON.stringify({
  served: iceServersFor({ ice_servers: served, turn_user: 'u', turn_password: 'p' }, configured),
  credentials: iceServersFor({ turn_user: '9:peer', turn_password: 'pw' }, configured),
  nothing: iceServersFor({}, configured),
  palava: palavaIceOptions(served),
  palavaNone: palavaIceOptions(undefined),
  parsed: ['{"event":"pong"}', '[1]', '3', 'null', 'not json', 42, null].map(parseObject),
  delays,
}));
""".replace("HOOK", json.dumps(RESOLVE_HOOK))


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


def test_one_guard_lets_json_objects_in_and_nothing_else(results: dict[str, Any]) -> None:
    assert results["parsed"] == [{"event": "pong"}, None, None, None, None, None, None]


def test_the_backoff_doubles_up_to_its_bound_with_jitter_and_starts_over(
        results: dict[str, Any]) -> None:
    for delay, base in zip(results["delays"], [100, 200, 400, 800, 1000, 1000, 100],
                           strict=True):
        assert 0.8 * base <= delay <= 1.2 * base
