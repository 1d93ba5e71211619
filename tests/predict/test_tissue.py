"""Tissue detection and per-tile tissue fractions."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.predict.tissue import tile_tissue_fraction, tissue_mask


@pytest.fixture
def half_tissue(rng):
    img = np.full((100, 200, 3), 245, np.uint8)  # white glass
    img[:, :100] = np.clip(rng.normal([200, 120, 180], 12, size=(100, 100, 3)), 0, 255).astype(np.uint8)
    img[5:7, 150:152] = [150, 60, 140]  # a 4-px speck on the glass
    img[40:43, 40:43] = 250  # a small hole in the tissue
    img[:, 190:] = 0  # black padding
    return img


@pytest.mark.parametrize("method", ["saturation", "od", "both"])
def test_mask_finds_the_tissue_half(half_tissue, method):
    mask = tissue_mask(half_tissue, method=method, min_object_px=16, max_hole_px=16)
    assert mask[:, :100].mean() == 1.0  # hole filled
    assert mask[:, 102:].mean() == 0.0  # glass, speck and padding excluded (smoothing blurs 1 px)


def test_all_tissue_is_not_split_in_two(rng):
    img = np.empty((60, 60, 3), np.uint8)
    img[:, :30] = [220, 150, 200]  # pale pink
    img[:, 30:] = [120, 60, 150]  # dark purple
    assert tissue_mask(img).mean() == 1.0
    assert tissue_mask(np.full((60, 60, 3), 240, np.uint8)).mean() == 0.0


def test_tile_fraction_box_sums():
    mask = np.zeros((10, 20), bool)
    mask[:, :10] = True
    # mask at scale 0.1: full-res tiles of 40 px centred at x = 20 (all tissue), 100 (half), 160 (none)
    frac = tile_tissue_fraction(mask, 0.1, np.array([[20, 50], [100, 50], [160, 50], [0, 0]]), 40)
    np.testing.assert_allclose(frac, [1.0, 0.5, 0.0, 0.25])
