"""Shared fixtures: real data from ../shared/data (skipped when absent) and tiny synthetic samples."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _patch_cache_outside_home(tmp_path_factory):
    """Training in tests caches patches in a temporary folder, not in the user's ~/.cache."""
    if "MCLSTEXP_CACHE" in os.environ:
        yield
        return
    os.environ["MCLSTEXP_CACHE"] = str(tmp_path_factory.mktemp("patch-cache"))
    yield
    os.environ.pop("MCLSTEXP_CACHE", None)


def _shared_data_root() -> Path | None:
    env = os.environ.get("MCLSTEXP_SHARED_DATA")
    root = Path(env) if env else REPO.parent / "shared" / "data"
    return root if root.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the shared real data (``../shared/data`` or ``$MCLSTEXP_SHARED_DATA``); skips if absent."""
    root = _shared_data_root()
    if root is None:
        pytest.skip("absent shared data: ../shared/data or $MCLSTEXP_SHARED_DATA not found")
    return root


@pytest.fixture(scope="session")
def her2st_dir(shared_data: Path) -> Path:
    path = shared_data / "her2st"
    if not path.is_dir():
        pytest.skip("absent shared data: her2st/ not in the shared data")
    return path


@pytest.fixture(scope="session")
def visium_tiny_dir(shared_data: Path) -> Path:
    path = shared_data / "visium_tiny"
    if not path.is_dir():
        pytest.skip("absent shared data: visium_tiny/ not in the shared data")
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


@pytest.fixture(scope="session")
def make_tiny_bundle(synthetic_samples):
    """Factory: a bundle from an untrained, seeded quick-preset model (16-d embeddings, 64 px crops → 32 px)
    built on SYN1 and SYN2; ``history`` and ``extra_samples`` go into the bundle as given, ``changes`` into the
    config."""

    def make(history=(), extra_samples=(), **changes):
        from types import SimpleNamespace

        import torch

        from napari_mclstexp.bundle import make_bundle
        from napari_mclstexp.model.mclstexp import build_model, pos_shape_for
        from napari_mclstexp.model.presets import get_preset

        torch.manual_seed(0)
        cfg = get_preset("quick").replace(**{"embed_dim": 16, "input_px": 32, "patch_px": 64, "k": 8, **changes})
        genes = list(synthetic_samples[0].var_names)
        pos_shape = pos_shape_for(synthetic_samples[:2], cfg)
        result = SimpleNamespace(
            model=build_model(cfg, len(genes), pos_shape),
            config=cfg,
            genes=genes,
            train_sections=["SYN1", "SYN2"],
            history=list(history),
            pos_shape=pos_shape,
        )
        return make_bundle(result, synthetic_samples[:2], "cpu", extra_samples=extra_samples)

    return make


#: Tiny ``quick`` configuration: trains an epoch on the synthetic sections in seconds.
TINY = {"patch_px": 32, "input_px": 16, "batch_size": 64, "embed_dim": 16, "k": 10}


@pytest.fixture(scope="session")
def tiny_trained(synthetic_samples):
    """A :class:`~napari_mclstexp.train.result.TrainResult`: ``quick`` at :data:`TINY` sizes, trained for one
    epoch on SYN1 and SYN2 (seeded), once per session.  Shared by the widget tests' trained bundle and the
    reliability tests; wrap it with ``make_bundle`` (a fresh bundle per user: they add metadata)."""
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.progress import run
    from napari_mclstexp.train.trainer import train

    return run(train(synthetic_samples[:2], get_preset("quick").replace(epochs=1, **TINY), device="cpu"))


@pytest.fixture(scope="session")
def tiny_bundle(make_tiny_bundle):
    """A tiny untrained bundle built with the real model code (see ``make_tiny_bundle``)."""
    return make_tiny_bundle()


@pytest.fixture(scope="session")
def he_slide_600(tmp_path_factory) -> Path:
    """A 600 × 600 px synthetic H&E PNG with five smooth regions (seeded), for whole-slide vs spot checks."""
    from PIL import Image

    from napari_mclstexp.synthetic import region_map, render_he

    rng = np.random.default_rng(11)
    img = render_he(region_map((600, 600), 5, rng, smooth_px=40), rng)
    path = tmp_path_factory.mktemp("he600") / "slide.png"
    Image.fromarray(img).save(path)
    return path


@pytest.fixture(scope="session")
def her2st_bc(her2st_dir, tmp_path_factory):
    """One brief ``quick`` model of HER2+ B4, C2, C3 shared by the real-data tests that need *a* trained model
    (region statistics, novelty), not a particular one: 3 epochs, seed 0, the study's 785 genes, tissue given.
    Patient C is in training (C4 is a serial section of C3).  Returns ``(sections, saved)``: B4, C2, C3, C4
    read once, and the training's :class:`~napari_mclstexp.workflows.train.SavedModel`."""
    from napari_mclstexp.data.genes import load_gene_list
    from napari_mclstexp.data.patches import PatchCache
    from napari_mclstexp.io.her2st import read_her2st_section
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.progress import run
    from napari_mclstexp.workflows.train import train_and_save

    sections = {s: read_her2st_section(her2st_dir, s) for s in ("B4", "C2", "C3", "C4")}
    folder = tmp_path_factory.mktemp("her2st-bc")
    saved = run(
        train_and_save(
            [sections[s] for s in ("B4", "C2", "C3")],
            get_preset("quick").replace(epochs=3, seed=0),  # brief: the tests check statistics, not the model
            folder / "bc.mclst",
            genes=load_gene_list(her2st_dir / "her_hvg_785.npy"),
            device="cpu",
            patch_cache=PatchCache(folder / "cache"),
            tissue="breast, HER2+, H&E",
        )
    )
    return sections, saved
