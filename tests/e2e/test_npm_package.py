"""The browser library as the npm package `switchboard-webrtc` (browser/client/package.json),
used as a web developer would: `npm pack`, installed into a scratch TypeScript app made
here, type-checked with `tsc` (a wrong event name or option fails), bundled with esbuild,
and the bundle run in Chromium: a star session between two pages, against the shared
cluster."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from harness.processes import ROOT, Cluster
from tests.e2e.tabs import Tab

LIBRARY = ROOT / "browser" / "client"
BIN = ROOT / "node_modules" / ".bin"

APP = """\
import { ResumableSocket, StarSession, type StarSessionEventMap } from 'switchboard-webrtc';

type Seen = { events: string[], hostId: string | null, peerId: string | null };
const seen: Seen = { events: [], hostId: null, peerId: null };
(window as unknown as { scratch: Seen }).scratch = seen;

const params = new URLSearchParams(location.search);
const session = new StarSession({ room: params.get('room') ?? 'scratch',
                                  status: { name: params.get('name') ?? 'someone' } });
const watched: (keyof StarSessionEventMap)[] = ['connected', 'closed'];
for (const name of watched) {
  session.on(name, () => seen.events.push(name));
}
session.on('host', (event) => { seen.hostId = event.detail.hostId; });
session.on('message', (event) => { seen.events.push('message:' + String(event.detail.data)); });
const socketClass: typeof ResumableSocket = ResumableSocket;
void socketClass;
session.start().then(() => { seen.peerId = session.peerId; });
"""

# Each a mistake a developer makes, and what tsc says of it.
MISTAKES = {
    "wrong_event.ts": ("import { StarSession } from 'switchboard-webrtc';\n"
                       "new StarSession({ room: 'r' }).on('conected', () => {});\n",
                       '"conected"'),
    "wrong_option.ts": ("import { StarSession } from 'switchboard-webrtc';\n"
                        "new StarSession({ room: 'r', hostt: true });\n",
                        "'hostt' does not exist"),
    "wrong_detail.ts": ("import { ResumableSocket } from 'switchboard-webrtc';\n"
                        "new ResumableSocket('ws://x/').on('resuming',"
                        " (e) => e.detail.reason);\n",
                        "'reason' does not exist"),
}

TSCONFIG = {"compilerOptions": {
    "strict": True, "noEmit": True, "target": "es2022", "module": "es2022",
    "moduleResolution": "bundler", "lib": ["es2022", "dom", "dom.iterable"], "types": [],
    "skipLibCheck": False}}


def run(argv: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`npm pack` of the library's folder, as a user would install it."""
    out = tmp_path_factory.mktemp("pack")
    packed = run(["npm", "pack", "--pack-destination", str(out), "--json"], LIBRARY)
    assert packed.returncode == 0, packed.stderr
    name = json.loads(packed.stdout)[0]["filename"]
    path = out / name
    print(f"\n[figures] npm package {name}: {path.stat().st_size} bytes")
    return path


@pytest.fixture(scope="module")
def app(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scratch TypeScript app with the packed library installed."""
    folder = tmp_path_factory.mktemp("scratch-app")
    (folder / "package.json").write_text(json.dumps({
        "name": "scratch-app", "private": True, "type": "module",
        "dependencies": {"switchboard-webrtc": f"file:{tarball}"}}))
    installed = run(["npm", "install", "--no-audit", "--no-fund", "--prefer-offline",
                     "--loglevel=error"], folder)
    assert installed.returncode == 0, installed.stderr
    (folder / "app.ts").write_text(APP)
    yield folder


def test_the_declarations_are_what_the_jsdoc_gives(tmp_path: Path) -> None:
    """browser/client/types/ is committed (a user can pack the folder without a build);
    it must be what tsc makes of the JSDoc now."""
    made = run([str(BIN / "tsc"), "-p", "browser/tsconfig.types.json", "--outDir",
                str(tmp_path)], ROOT)
    assert made.returncode == 0, made.stdout
    committed = {p.name: p.read_text() for p in (LIBRARY / "types").glob("*.d.ts")}
    fresh = {p.name: p.read_text() for p in tmp_path.glob("*.d.ts")}
    assert committed == fresh, "run: npx tsc -p browser/tsconfig.types.json"


def test_the_package_holds_the_modules_and_their_types_and_nothing_else(
        tarball: Path) -> None:
    with tarfile.open(tarball) as packed:
        names = {name.removeprefix("package/") for name in packed.getnames()}
        manifest = json.load(packed.extractfile("package/package.json"))  # type: ignore[arg-type]
    modules = {p.name for p in LIBRARY.glob("*.js")}
    assert modules <= names and "types/switchboard.d.ts" in names
    assert names <= modules | {f"types/{p.name}" for p in (LIBRARY / "types").glob("*.d.ts")} \
        | {"package.json", "README.md"}
    assert manifest["type"] == "module" and "dependencies" not in manifest
    assert manifest["exports"]["."] == {"types": "./types/switchboard.d.ts",
                                        "default": "./switchboard.js"}


def test_an_app_type_checks_against_the_package_and_mistakes_fail(app: Path) -> None:
    (app / "tsconfig.json").write_text(json.dumps({**TSCONFIG, "files": ["app.ts"]}))
    checked = run([str(BIN / "tsc"), "-p", "."], app)
    assert checked.returncode == 0, checked.stdout
    for name, (source, says) in MISTAKES.items():
        (app / name).write_text(source)
        (app / "tsconfig.json").write_text(json.dumps({**TSCONFIG, "files": [name]}))
        failed = run([str(BIN / "tsc"), "-p", "."], app)
        assert failed.returncode != 0 and says in failed.stdout, (name, failed.stdout)


async def test_the_bundled_app_runs_a_star_session_in_chromium(
        app: Path, browser: Browser, cluster: Cluster, room: str) -> None:
    bundled = run([str(BIN / "esbuild"), "app.ts", "--bundle", "--format=iife",
                   "--target=es2022", "--outfile=bundle.js"], app)
    assert bundled.returncode == 0, bundled.stderr
    bundle = (app / "bundle.js").read_text()
    port = cluster.gateways[0][1]
    tabs: list[Tab] = []
    try:
        for name in ("host", "client"):
            tab = await Tab.load(browser, f"http://127.0.0.1:{port}/healthz?room={room}"
                                 f"&name={name}", name)
            await tab.page.add_script_tag(content=bundle)
            tabs.append(tab)
            await tab.wait("() => window.scratch.peerId !== null", what="the join")
        host, client = tabs
        host_id = await host.page.evaluate("window.scratch.peerId")
        for tab in tabs:
            await tab.wait("() => window.scratch.events.includes('connected')",
                           timeout_s=20, what="the star link connected")
            assert await tab.page.evaluate("window.scratch.hostId") == host_id
    finally:
        for tab in tabs:
            await tab.close()
