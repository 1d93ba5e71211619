"""The twin slide of measured-beside-predicted: a lazy crop of a slide's levels reads what a numpy crop holds."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.io.wsi_levels import RGBLevel
from napari_mclstexp.layer_data.crop import CroppedLevel, crop_levels


class CountingLevel(RGBLevel):
    """An RGBLevel over a numpy array that records the rows it was asked for."""

    def __init__(self, array: np.ndarray) -> None:
        super().__init__(array, "YXS")
        self.reads: list = []

    def __getitem__(self, key):
        self.reads.append(key)
        return super().__getitem__(key)


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "key",
    [
        (slice(None), slice(None)),
        (slice(2, 9), slice(3, 30, 2)),
        (slice(None, None, -1), slice(None)),
        (4, slice(None)),
        (-1, -2),
        (slice(1, 5), slice(0, 7), 1),
        (Ellipsis, 0),
        (np.array([0, 3, -1]), slice(None)),
    ],
)
def test_a_crop_reads_like_the_numpy_crop(image, key):
    lazy = CroppedLevel(CountingLevel(image), (10, 40), (5, 65))
    want = image[10:40, 5:65][key]
    np.testing.assert_array_equal(lazy[key], want)
    assert lazy.shape == (30, 60, 3) and lazy.dtype == np.uint8 and lazy.ndim == 3 and lazy.size == 30 * 60 * 3


def test_nothing_is_read_until_sliced_and_only_the_crop(image):
    base = CountingLevel(image)
    (lazy,) = crop_levels([base], (10.2, 39.5), (5.0, 64.1))
    assert base.reads == []
    np.testing.assert_array_equal(np.asarray(lazy), image[10:40, 5:65])
    (rows, cols, *_rest) = base.reads[-1]
    assert (rows.start, rows.stop, cols.start, cols.stop) == (10, 40, 5, 65)


def test_levels_are_cut_to_the_same_box_and_numpy_levels_stay_views(image):
    half = image[::2, ::2].copy()
    full, small = crop_levels([CountingLevel(image), half], (10, 40), (6, 66))
    assert full.shape[:2] == (30, 60) and small.shape[:2] == (15, 30)
    assert isinstance(small, np.ndarray) and np.shares_memory(small, half)
    np.testing.assert_array_equal(small, half[5:20, 3:33])
    with pytest.raises(IndexError):
        full[30]
