"""The locks (requirements/*.lock, package-lock.json) agree with the ranges they were
written from, the service's lock is the tests' own versions, and the suite runs on what
the lock pins: what CI ran is what the image and Heroku install."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from harness.processes import ROOT

LOCKS = ROOT / "requirements"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: Marker | None
    hashes: int

    def applies(self) -> bool:
        return self.marker is None or self.marker.evaluate()


def read_lock(path: Path) -> list[Pin]:
    """A `uv pip compile --generate-hashes` file: `name==version [; marker] \\` lines,
    each followed by its `--hash=` lines."""
    pins: list[Pin] = []
    for line in path.read_text().splitlines():
        text = line.strip().rstrip("\\").strip()
        if text.startswith("--hash="):
            last = pins[-1]
            pins[-1] = Pin(last.name, last.version, last.marker, last.hashes + 1)
        elif text and not text.startswith("#"):
            requirement, _, marker = text.partition(";")
            name, _, version = requirement.strip().partition("==")
            assert version, f"{path.name}: not a pin: {line!r}"
            pins.append(Pin(canonicalize_name(name), version,
                            Marker(marker) if marker.strip() else None, 0))
    return pins


def applicable(pins: list[Pin]) -> dict[str, str]:
    return {pin.name: pin.version for pin in pins if pin.applies()}


def ranges(*extras: str, build: bool = True) -> list[Requirement]:
    """pyproject.toml's ranges: the service's, the build backend's, and `extras`'."""
    project = PYPROJECT["project"]
    names = [*project["dependencies"]]
    if build:
        names += PYPROJECT["build-system"]["requires"]
    for extra in extras:
        names += project["optional-dependencies"][extra]
    return [Requirement(text) for text in names]


@pytest.mark.parametrize(("lock", "extras"), [
    ("dev.lock", ("test", "bench")), ("service.lock", ()),
])
def test_every_range_has_a_pin_within_it_and_every_pin_a_hash(lock: str,
                                                              extras: tuple[str, ...]) -> None:
    pins = read_lock(LOCKS / lock)
    assert all(pin.hashes for pin in pins), [pin.name for pin in pins if not pin.hashes]
    versions = applicable(pins)
    for requirement in ranges(*extras):
        name = canonicalize_name(requirement.name)
        assert name in versions, f"{lock} lacks {requirement}: run scripts/lock"
        assert requirement.specifier.contains(versions[name], prereleases=True), \
            f"{lock} pins {name}=={versions[name]}, outside {requirement}: run scripts/lock"


def test_the_service_lock_is_the_tests_versions() -> None:
    dev = {(pin.name, pin.version) for pin in read_lock(LOCKS / "dev.lock")}
    service = {(pin.name, pin.version) for pin in read_lock(LOCKS / "service.lock")}
    assert service <= dev, sorted(service - dev)


def test_the_lowest_lock_pins_each_lower_bound() -> None:
    versions = applicable(read_lock(LOCKS / "lowest.lock"))
    for requirement in ranges(build=False):
        name = canonicalize_name(requirement.name)
        lower = next(spec.version for spec in requirement.specifier if spec.operator == ">=")
        assert Version(versions[name]) == Version(lower), (name, versions[name], lower)


@pytest.mark.skipif(os.environ.get("SWITCHBOARD_LATEST") == "1",
                    reason="scripts/test --latest runs on the newest releases, not the lock")
def test_the_suite_runs_on_what_the_lock_pins() -> None:
    wrong = {name: (version, installed) for name, version in
             applicable(read_lock(LOCKS / "dev.lock")).items()
             if (installed := metadata.version(name)) != version}
    assert wrong == {}, "installed versions differ from requirements/dev.lock (pin, installed)"


@pytest.mark.parametrize("folder", [".", "bench/peerjs"])
def test_package_lock_pins_what_package_json_asks(folder: str) -> None:
    wanted = json.loads((ROOT / folder / "package.json").read_text())
    lock = json.loads((ROOT / folder / "package-lock.json").read_text())
    root = lock["packages"][""]
    for field in ("dependencies", "devDependencies"):
        assert root.get(field) == wanted.get(field), f"package-lock.json is stale: {field}"
    installed = {path: entry for path, entry in lock["packages"].items() if path}
    for name in [*wanted.get("dependencies", {}), *wanted.get("devDependencies", {})]:
        assert f"node_modules/{name}" in installed, name
    assert all(entry.get("integrity") for entry in installed.values())
