"""The import-linter contracts of ``pyproject.toml`` hold, and a wrong import is caught.

The contracts (engine without Qt, the package's layers in order) are what ``make lint`` checks; here they
also run with the tests, on the sources and on a copy of them with one deliberately wrong import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(src: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_sources_keep_every_contract():
    out = lint(REPO / "src")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(
    "module, line, contracts",
    [
        # a lower layer importing a higher one (and, through it, train/'s shared helpers reaching the trainer)
        ("model/spot.py", "from ..train import trainer  # noqa", ["Layers", "train/"]),
        ("train/result.py", "from . import frozen  # noqa", ["train/"]),  # a circle inside train/
        # the readers reach predict (whole-slide tiles), so they would reach Qt through it as well
        (
            "predict/retrieval.py",
            "from .._qt import _colors  # noqa",
            ["never imports Qt", "readers never import Qt", "Layers"],
        ),
        ("data/augment.py", "import qtpy  # noqa", ["never imports Qt", "readers never import Qt"]),
        ("_reader.py", "from ._qt import _colors  # noqa", ["readers never import Qt", "Layers"]),
        ("_sample_data.py", "from ._qt import _layers  # noqa", ["readers never import Qt", "Layers"]),
        ("layer_data/colors.py", "import qtpy  # noqa", ["readers never import Qt"]),
        ("layer_data/base.py", "from .. import _reader  # noqa", ["Layers"]),
    ],
)
def test_a_wrong_import_is_caught(tmp_path, module, line, contracts):
    copy = tmp_path / "src"
    shutil.copytree(
        REPO / "src" / "napari_mclstexp",
        copy / "napari_mclstexp",
        ignore=shutil.ignore_patterns("__pycache__", "sample_data"),
    )
    target = copy / "napari_mclstexp" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    out = lint(copy)
    assert out.returncode != 0
    broken = [ln for ln in out.stdout.splitlines() if ln.endswith("BROKEN")]
    assert len(broken) == len(contracts), out.stdout[-3000:]
    assert all(any(c in b for b in broken) for c in contracts), out.stdout[-3000:]
