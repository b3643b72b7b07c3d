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
    # The library, and the demo pages' shared modules (the pages themselves are untyped).
    modules = sorted(str(path) for path in (ROOT / "gateway" / "client").glob("*.js"))
    modules += [str(ROOT / "gateway" / "demo_page" / name)
                for name in ("page.js", "palava-resume.js")]
    result = subprocess.run(
        [str(TSC), "--noEmit", "--allowJs", "--checkJs", "--strict", "--target", "es2022",
         "--module", "es2022", "--lib", "es2022,dom,dom.iterable", *modules],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
