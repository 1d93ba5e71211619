"""The compiled texture codes equal the numpy form's bit for bit (the descriptors do not move)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.data._cpu_kernels import circle_taps, lbp_codes_cpu
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


def test_cell_tallies_equal_a_plain_count_and_sum():
    """Per cell: the counts of each bin and code and the integer sums equal a bincount and plain sums; the stain
    sums agree to float64 rounding (another summation order)."""
    from napari_mclstexp.data._cpu_kernels import cell_tallies

    rng = np.random.default_rng(7)
    n, rows, cols, cell = 2, 3, 4, 8
    width, npix = cols * cell, rows * cell * cols * cell
    inner = rng.integers(0, 256, (n, npix, 3), dtype=np.uint8)
    hed = rng.gamma(1.0, 0.4, (n, npix, 3)).astype(np.float32)  # some past the last bin
    lbp = (rng.integers(0, 10, (n, npix)), rng.integers(0, 18, (n, npix)))
    n_bins, hed_bins, step = 8, 16, 0.1
    layout = (0, 3 * n_bins, 3 * n_bins + 3 * hed_bins, 3 * n_bins + 3 * hed_bins + 10, 3 * n_bins + 3 * hed_bins + 28)
    got = cell_tallies(inner, hed, lbp, (rows, cols, cell, width), (*layout, n_bins, hed_bins), step)
    assert got.shape == (n, rows, cols, layout[4] + 12)

    pix = np.arange(npix)
    cell_of = (pix // width) // cell * cols + (pix % width) // cell
    for i in range(n):
        for k in range(rows * cols):
            at = cell_of == k
            counts = np.zeros(layout[4])
            for c in range(3):
                counts[c * n_bins : (c + 1) * n_bins] += np.bincount(inner[i, at, c] >> 5, minlength=n_bins)
                bins = np.minimum(hed[i, at, c] * np.float32(1 / step), hed_bins - 1).astype(int)
                counts[layout[1] + c * hed_bins : layout[1] + (c + 1) * hed_bins] += np.bincount(
                    bins, minlength=hed_bins
                )
            counts[layout[2] : layout[3]] += np.bincount(lbp[0][i, at], minlength=10)
            counts[layout[3] : layout[4]] += np.bincount(lbp[1][i, at], minlength=18)
            mine = got[i, k // cols, k % cols]
            np.testing.assert_array_equal(mine[: layout[4]], counts)
            rgb = inner[i, at].astype(np.int64)
            np.testing.assert_array_equal(mine[layout[4] : layout[4] + 6], np.r_[rgb.sum(0), (rgb**2).sum(0)])
            amounts = hed[i, at].astype(np.float64)
            np.testing.assert_allclose(mine[-6:], np.r_[amounts.sum(0), (amounts**2).sum(0)], rtol=1e-12)
