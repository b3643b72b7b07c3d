"""The code stays `mypy --strict` and `ruff` clean (style.md, point 8), and the browser
library's JSDoc types hold (TypeScript's checker, from npm: nothing is compiled)."""

from __future__ import annotations

import subprocess
import sys

from harness.processes import ROOT

TSC = ROOT / "node_modules" / ".bin" / "tsc"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing() -> None:
    result = _run("mypy", "--no-incremental")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_browser_library_type_checks() -> None:
    assert TSC.exists(), f"{TSC} is missing: scripts/test installs it (package.json)"
    # browser/tsconfig.json: the library, and the demo pages' shared modules (the pages
    # themselves are untyped), with `/client/...` found in browser/client/ as a gateway
    # serves it.
    result = subprocess.run([str(TSC), "-p", str(ROOT / "browser"), "--listFiles"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    checked = {line for line in result.stdout.splitlines() if "node_modules" not in line}
    assert {str(path) for path in (ROOT / "browser" / "client").glob("*.js")} <= checked
    assert str(ROOT / "browser" / "demo" / "palava-resume.js") in checked
