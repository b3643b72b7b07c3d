"""Tests mirror the layout: a unit test file is named for what it tests, so that the
tests of a module are found by its path (`tests/gateway/test_routing.py` tests
`gateway/routing.py`; `test_rooms_lifecycle.py` is one aspect of `relay/rooms.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.processes import ROOT

PACKAGES = ["gateway", "relay", "shared", "redis_io", "harness", "switchboard_client"]


def _names_one_of(test: Path, names: set[str]) -> bool:
    stem = test.stem.removeprefix("test_")
    return any(stem == name or stem.startswith(f"{name}_") for name in names)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_unit_test_file_is_named_for_a_module_of_its_package(package: str) -> None:
    modules = {path.stem for path in (ROOT / package).glob("*.py")} - {"__init__"}
    tests = sorted((ROOT / "tests" / package).glob("test_*.py"))
    assert tests, f"tests/{package}/ has no tests"
    stray = [test.name for test in tests if not _names_one_of(test, modules)]
    assert not stray, f"tests/{package}/ files named for no module of {package}/: {stray}"


def test_each_browser_test_file_is_named_for_a_folder_or_module_of_browser() -> None:
    browser = ROOT / "browser"
    names = {path.name for path in browser.iterdir() if path.is_dir()}
    names |= {path.stem.replace("-", "_") for path in browser.glob("*/*.js")}
    tests = sorted((ROOT / "tests" / "browser").glob("test_*.py"))
    assert tests
    stray = [test.name for test in tests if not _names_one_of(test, names)]
    assert not stray, f"tests/browser/ files named for nothing in browser/: {stray}"
