"""Shared fixtures: real data from ../shared/data (skipped when absent) and tiny synthetic samples."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data_root() -> Path | None:
    env = os.environ.get("MCLSTEXP_SHARED_DATA")
    root = Path(env) if env else REPO.parent / "shared" / "data"
    return root if root.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the shared real data (``../shared/data`` or ``$MCLSTEXP_SHARED_DATA``); skips if absent."""
    root = _shared_data_root()
    if root is None:
        pytest.skip("shared data not found (../shared/data or $MCLSTEXP_SHARED_DATA)")
    return root


@pytest.fixture(scope="session")
def her2st_dir(shared_data: Path) -> Path:
    path = shared_data / "her2st"
    if not path.is_dir():
        pytest.skip("her2st data not found")
    return path


@pytest.fixture(scope="session")
def visium_tiny_dir(shared_data: Path) -> Path:
    path = shared_data / "visium_tiny"
    if not path.is_dir():
        pytest.skip("visium_tiny data not found")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synthetic")


@pytest.fixture(scope="session")
def synthetic_samples(synthetic_dir: Path):
    """Three small synthetic sections (two patients) with images, 512² px, ~140 spots, 24 genes."""
    from napari_mclstexp.synthetic import make_synthetic_sample

    return [
        make_synthetic_sample(synthetic_dir, seed=s, section=f"SYN{s}", patient=p)
        for s, p in [(1, "P1"), (2, "P1"), (3, "P2")]
    ]


@pytest.fixture
def synthetic_sample(synthetic_samples):
    """One synthetic section (a copy: tests may modify it)."""
    return synthetic_samples[0].copy()


def pytest_configure(config):
    # torch.optim imports torch._dynamo, which loads Triton's LLVM; if a napari viewer has already
    # mapped Mesa's LLVM (software OpenGL under Xvfb) the process segfaults. Loading it first is safe.
    try:
        import torch._dynamo  # noqa: F401
    except Exception:  # noqa: BLE001 - torch missing or broken: the tests that need it will say so
        pass
