"""The locked set-up: ``constraints.txt`` pins every package exactly, satisfies ``pyproject.toml``, is what
the venv holds, and ``make setup`` installs nothing past it (``make lock`` refreshes it)."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PROJECT = "napari-mclstexp"


def read_lock(path: Path = REPO / "constraints.txt") -> dict[str, str]:
    """``{canonical name: version}`` of a constraints file; every line a comment or ``name==version``."""
    pins: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", line)
        assert match, f"{path.name}:{n}: not an exact pin: {line!r}"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{path.name}:{n}: {name} pinned twice"
        pins[name] = match.group(2)
    return pins


def installed_closure(root: str, extras: set[str]) -> dict[str, str]:
    """``{canonical name: installed version}`` of ``root[extras]`` and everything it needs, as installed."""
    versions: dict[str, str] = {}
    walked: dict[str, set[str]] = {}
    todo = [(root, frozenset(extras))]
    while todo:
        name, wanted = todo.pop()
        key = canonicalize_name(name)
        if key in walked and wanted <= walked[key]:
            continue
        walked.setdefault(key, set()).update(wanted)
        dist = metadata.distribution(name)
        versions[key] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (wanted or {""})):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return versions


def test_the_lock_pins_every_package_exactly():
    pins = read_lock()
    assert len(pins) > 150
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    for name in ("pip", "setuptools", "spatialdata", "openslide-python", "openslide-bin", "napari", "pytest"):
        assert name in pins, name
    assert canonicalize_name(PROJECT) not in pins  # the project itself is installed editable, not pinned
    # SpatialData imports without pkg_resources (gone from setuptools >= 81): no xarray-schema any more
    assert Version(pins["spatialdata"]) >= Version("0.7.3") and "xarray-schema" not in pins


def test_a_constraints_line_that_is_no_pin_is_refused(tmp_path):
    import pytest

    bad = tmp_path / "c.txt"
    bad.write_text("# fine\nnumpy==2.4.6\nscipy>=1.10\n")
    with pytest.raises(AssertionError, match=r"c.txt:3: not an exact pin: 'scipy>=1.10'"):
        read_lock(bad)
    bad.write_text("numpy==2.4.6\nNumPy==2.4.5\n")
    with pytest.raises(AssertionError, match="numpy pinned twice"):
        read_lock(bad)


def test_the_lock_satisfies_every_range_of_pyproject():
    """A range raised in pyproject.toml without `make lock` would make `make setup` fail: caught here."""
    pins = read_lock()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    checked = 0
    for line in lines:
        req = Requirement(line)
        if canonicalize_name(req.name) == canonicalize_name(PROJECT):
            continue
        assert canonicalize_name(req.name) in pins, f"{req.name} is not in constraints.txt: run make lock"
        assert req.specifier.contains(pins[canonicalize_name(req.name)], prereleases=True), (line, pins[req.name])
        checked += 1
    assert checked >= 25


def test_the_venv_holds_the_locked_versions():
    """Every package the project and its test extra need is installed at its locked version (and pip too)."""
    pins = read_lock()
    needed = installed_closure(PROJECT, {"test"})
    needed["pip"] = metadata.version("pip")
    needed.pop(canonicalize_name(PROJECT))
    assert len(needed) > 150
    off = {name: (version, pins.get(name)) for name, version in needed.items() if pins.get(name) != version}
    assert not off, f"installed vs locked (make setup installs the lock): {off}"


def test_the_closure_follows_extras_and_markers():
    closure = installed_closure(PROJECT, {"test"})
    assert {"napari", "pyqt6", "spatialdata", "dask", "torch", "pytest"} <= set(closure)
    assert "pywin32" not in closure  # napari's Windows-only requirement
    assert "pytest" not in installed_closure(PROJECT, set())  # only the test extra brings it


def test_make_setup_installs_only_through_the_lock():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("$(STAMP): pyproject.toml $(CONSTRAINTS)\n", 1)[1].split("\n\n", 1)[0]
    installs = [line for line in recipe.splitlines() if "pip install" in line]
    assert len(installs) == 2 and all("-c $(CONSTRAINTS)" in line for line in installs), installs
    assert not any("||" in line for line in installs)  # no unconstrained fallback
    assert re.search(r"^CONSTRAINTS := constraints.txt$", makefile, re.M)
    assert re.search(r"^lock:", makefile, re.M) and "pip freeze --all --exclude-editable" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text()
