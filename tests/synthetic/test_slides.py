"""The synthetic slides: deterministic, learnable structure, scverse conventions."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.synthetic.slides import (
    DEMO_REGION_NAMES,
    balanced_region_map,
    make_demo_slide,
    make_synthetic_sample,
    spot_density,
)


@pytest.fixture(scope="module")
def small_demo():
    return make_demo_slide(image_px=(768, 1024), spot_spacing_px=40.0, n_regions=4, seed=3)


def test_balanced_region_map_covers_every_label_evenly():
    labels = balanced_region_map((400, 600), 5, np.random.default_rng(0), blob_px=150)
    frac = np.bincount(labels.ravel(), minlength=5) / labels.size
    assert labels.shape == (400, 600)
    assert frac.min() > 0.12 and frac.max() < 0.3


def test_demo_slide_shapes_and_conventions(small_demo):
    image, adata = small_demo
    assert image.shape == (768, 1024, 3) and image.dtype == np.uint8
    assert adata.n_obs > 100
    assert adata.n_vars == 4 * 4 + 1 + 12
    assert adata.var_names.is_unique
    xy = adata.obsm["spatial"]
    assert xy[:, 0].max() < 1024 and xy[:, 1].max() < 768  # (x = column, y = row)
    meta = adata.uns["spatial"]["DEMO1"]["metadata"]
    assert meta["source_image_path"] == "demo_slide.ome.tif"  # relative on purpose
    assert meta["microns_per_pixel"] == 1.0
    assert adata.uns["spatial"]["DEMO1"]["scalefactors"]["spot_diameter_fullres"] == pytest.approx(22.0)
    assert set(adata.obs["annotation"].cat.categories) == set(DEMO_REGION_NAMES[:4])
    split = adata.obs["demo_split"].to_numpy()
    assert np.all(xy[split == "train", 0] < 1024 * 2 / 3)
    assert np.all(xy[split == "test", 0] >= 1024 * 2 / 3)


def test_demo_slide_glass_outside_tissue(small_demo):
    image, _ = small_demo
    corner = image[:20, :20].reshape(-1, 3).astype(float)
    assert corner.mean() > 235  # glass is bright; tissue is stained darker
    centre = image[354:414, 482:542].reshape(-1, 3).astype(float)
    assert centre.mean() < corner.mean() - 15


def test_demo_markers_follow_regions(small_demo):
    _, adata = small_demo
    counts = np.asarray(adata.X.todense())
    labels = adata.obs["annotation"].cat.codes.to_numpy()
    for r, name in enumerate(DEMO_REGION_NAMES[:4]):
        col = list(adata.var_names).index(f"{name.upper()}_M1")
        inside, outside = counts[labels == r, col].mean(), counts[labels != r, col].mean()
        assert inside > 4 * outside, name
    noise = list(adata.var_names).index("NOISE_1")
    means = [counts[labels == r, noise].mean() for r in range(4)]
    assert max(means) < 1.6 * min(means)


def test_demo_slide_is_deterministic(small_demo):
    image, adata = small_demo
    image2, adata2 = make_demo_slide(image_px=(768, 1024), spot_spacing_px=40.0, n_regions=4, seed=3)
    assert np.array_equal(image, image2)
    assert np.array_equal(adata.X.toarray(), adata2.X.toarray())
    image3, _ = make_demo_slide(image_px=(768, 1024), spot_spacing_px=40.0, n_regions=4, seed=4)
    assert not np.array_equal(image, image3)


def test_spot_density_measures_the_disc():
    nuclei = np.zeros((50, 50), dtype=np.float32)
    nuclei[:, 25:] = 1.0
    dens = spot_density(nuclei, np.array([[10.0, 25.0], [40.0, 25.0], [25.0, 25.0]]), radius_px=5)
    assert dens[0] == 0.0 and dens[1] == 1.0
    assert 0.45 < dens[2] < 0.65


def test_make_synthetic_sample_unchanged(tmp_path):
    adata = make_synthetic_sample(tmp_path, seed=1, section="S1")
    assert adata.n_vars == 24 and adata.n_obs > 100
    assert (tmp_path / "S1.png").is_file()
    assert adata.uns["spatial"]["S1"]["metadata"]["source_image_path"] == str((tmp_path / "S1.png").resolve())
