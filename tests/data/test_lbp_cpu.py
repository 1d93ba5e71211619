"""The compiled texture codes equal the numpy form's bit for bit (the descriptors do not move)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.data._lbp_cpu import circle_taps, lbp_codes_cpu
from napari_mclstexp.data.descriptors import _LBP, MARGIN, lbp_codes
from napari_mclstexp.synthetic.slides import region_map, render_he


def _grey(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8).astype(np.float32)


@pytest.mark.parametrize(("radius", "points"), _LBP)
def test_codes_equal_the_numpy_form_on_noise_and_flat_images(radius, points):
    rng = np.random.default_rng(radius)
    noise = rng.integers(0, 256, (3, 61, 47)).astype(np.float32)
    flat = np.full((1, 20, 20), 128.0, np.float32)  # every sample equals the centre: all bits set
    steps = np.repeat(np.arange(24, dtype=np.float32)[None, :] * 10, 24, axis=0)[None]  # a ramp: half the circle
    for grey in (noise, flat, steps):
        expected = lbp_codes(grey, radius, points, MARGIN)
        got = lbp_codes_cpu(grey, radius, points, MARGIN)
        assert got.shape == expected.shape and got.dtype == np.int32
        np.testing.assert_array_equal(got, expected)
    assert (lbp_codes_cpu(flat, radius, points, MARGIN) == points).all()


def test_codes_equal_the_numpy_form_on_a_rendered_section():
    rng = np.random.default_rng(3)
    rgb = render_he(region_map((256, 256), 4, rng, 48.0), rng)[None]
    grey = _grey(rgb)
    for radius, points in _LBP:
        np.testing.assert_array_equal(lbp_codes_cpu(grey, radius, points, 4), lbp_codes(grey, radius, points, 4))


def test_taps_are_those_of_the_numpy_form_and_bad_input_is_refused():
    offsets, weights, terms = circle_taps(1, 8)
    assert offsets.shape == (8, 2) and terms[:, 0].all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)  # bilinear weights of each sample
    assert not terms[0, 2] and terms[1, 3]  # (0, 1) lies on the grid; the diagonal does not
    with pytest.raises(ValueError, match="float32"):
        lbp_codes_cpu(np.zeros((1, 9, 9)), 1, 8, 4)
    with pytest.raises(ValueError, match="margin"):
        lbp_codes_cpu(np.zeros((1, 9, 9), np.float32), 3, 16, 2)
