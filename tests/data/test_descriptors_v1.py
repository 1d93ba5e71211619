"""Version-1 tissue descriptors (older bundles): LBP as scikit-image computes it, stains that separate."""

import numpy as np
import pytest

from napari_mclstexp.data.descriptors_v1 import (
    N_DESCRIPTORS,
    PER_VIEW,
    SPOT_PX,
    VIEW_PX,
    stain_features,
    texture_features,
    tissue_descriptors,
)


@pytest.fixture
def reads():
    return np.random.default_rng(0).integers(0, 256, (4, VIEW_PX, VIEW_PX, 3), dtype=np.uint8)


def test_texture_codes_are_scikit_images_uniform_lbp(reads):
    from skimage.feature import local_binary_pattern

    patches = np.ascontiguousarray(reads[:, :48, :48])
    ours = texture_features(patches)
    for patch, row in zip(patches, ours, strict=True):
        grey = (patch.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
        expected = []
        for radius, points in ((1, 8), (3, 16)):
            m = radius + 1
            codes = local_binary_pattern(grey, points, radius, "uniform")[m:-m, m:-m].astype(int)
            expected += list(np.bincount(codes.ravel(), minlength=points + 2) / codes.size)
        np.testing.assert_allclose(row, expected, atol=1e-6)


def test_stains_are_scikit_images_colour_deconvolution(reads):
    from skimage.color import rgb2hed

    patches = np.maximum(reads[:2, :16, :16], 1)  # skimage clips at 1e-6, we at one grey level
    ours = stain_features(patches)
    for patch, row in zip(patches, ours, strict=True):
        hed = rgb2hed(patch).reshape(-1, 3) * -np.log(1e-6)  # skimage scales optical densities by 1 / ln(1e6)
        np.testing.assert_allclose(row[:3], hed.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(row[9:12], np.percentile(hed, 50, axis=0), rtol=1e-4, atol=1e-5)


def test_stains_separate_haematoxylin_from_eosin():
    purple = np.full((1, 16, 16, 3), (80, 40, 140), np.uint8)  # haematoxylin-like
    pink = np.full((1, 16, 16, 3), (235, 120, 180), np.uint8)  # eosin-like
    h, e = stain_features(purple)[0], stain_features(pink)[0]
    assert h[0] > e[0]  # mean haematoxylin density
    assert e[1] - e[0] > h[1] - h[0]  # eosin outweighs haematoxylin in the pink patch only


def test_spot_view_is_the_centre_and_context_the_whole(reads):
    base = tissue_descriptors(reads)
    assert base.shape == (4, N_DESCRIPTORS) and base.dtype == np.float32
    lo = (VIEW_PX - SPOT_PX) // 2
    outside = reads.copy()
    outside[:, :lo] = 255  # a band outside the spot's square
    changed = tissue_descriptors(outside)
    np.testing.assert_array_equal(changed[:, :PER_VIEW], base[:, :PER_VIEW])  # the spot view did not move
    assert np.abs(changed[:, PER_VIEW:] - base[:, PER_VIEW:]).max() > 0.01  # the context saw it
    inside = reads.copy()
    inside[:, lo : lo + SPOT_PX, lo : lo + SPOT_PX] = 255
    assert np.abs(tissue_descriptors(inside)[:, :PER_VIEW] - base[:, :PER_VIEW]).max() > 0.01
    shifted = reads.copy()  # negative control: a square off the centre is not the spot view
    shifted[:, :SPOT_PX, :SPOT_PX] = 255
    np.testing.assert_array_equal(tissue_descriptors(shifted)[:, :PER_VIEW], base[:, :PER_VIEW])


def test_reads_of_another_size_are_resized_and_bad_shapes_refused(reads):
    small = reads[:, ::2, ::2]
    assert tissue_descriptors(np.ascontiguousarray(small)).shape == (4, N_DESCRIPTORS)
    assert tissue_descriptors(np.zeros((0, VIEW_PX, VIEW_PX, 3), np.uint8)).shape == (0, N_DESCRIPTORS)
    with pytest.raises(ValueError, match="square"):
        tissue_descriptors(np.zeros((2, 10, 12, 3), np.uint8))
