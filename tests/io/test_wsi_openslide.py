"""The OpenSlide backend against the real library (openslide-python + openslide-bin, in the test extra).

Both backends read the same file: a generic tiled TIFF, losslessly compressed, its levels as separate pages
(OpenSlide would read an OME SubIFD pyramid as one level).  OpenSlide is compared with tifffile pixel for
pixel at every level, at odd offsets and at regions crossing the image's borders.

No stand-in remains: a generic TIFF under a vendor's suffix (``.mrxs``) goes through OpenSlide as MRXS
slides do, and the only vendor property the backend reads, ``openslide.mpp-x``, OpenSlide sets from
the TIFF's resolution tags.
"""

from __future__ import annotations

import shutil
import sys

import numpy as np
import openslide
import pytest
import tifffile

from napari_mclstexp.errors import ImageReadError
from napari_mclstexp.io.wsi import _open_openslide, _open_tiff, open_slide

MPP = 0.5


def write_page_pyramid(path, image: np.ndarray, n_levels: int, compression: str, tile=(80, 112)):
    """Tiled RGB TIFF, level ``i`` = ``image[::2**i, ::2**i]`` as page ``i`` (reduced-resolution pages)."""
    levels = [image[:: 2**i, :: 2**i].copy() for i in range(n_levels)]
    with tifffile.TiffWriter(path) as tw:
        for i, level in enumerate(levels):
            tw.write(
                level,
                photometric="rgb",
                tile=tile,
                compression=compression,
                subfiletype=1 if i else 0,
                metadata=None,
                resolution=(1e4 / (MPP * 2**i),) * 2,
                resolutionunit="CENTIMETER",
            )
    return path, levels


def _image(h: int, w: int, seed: int) -> np.ndarray:
    """Noise: any shift or blend between neighbours shows."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _edge_regions(w: int, h: int) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height) at odd offsets, across each border and corner, fully outside, 1 px."""
    return [
        (1, 1, 7, 5),
        (3, 5, 33, 17),
        (37, 23, 111, 81),  # across tile edges
        (-4, -3, 9, 7),  # top-left corner
        (w - 5, h - 3, 11, 9),  # bottom-right corner
        (-10, h // 2 + 1, w + 20, 5),  # wider than the image
        (w // 3, -7, 13, h + 14),  # taller than the image
        (w - 1, 0, 1, 1),
        (0, h - 1, 1, 1),
        (w + 3, 2, 4, 4),  # outside: zeros
    ]


@pytest.fixture(scope="module", params=["zlib", "lzw"])
def exact_pyramid(request, tmp_path_factory):
    """512×384 halved exactly three times: integral downsamples 1, 2, 4, 8; partial edge tiles."""
    image = _image(384, 512, seed=1)
    return write_page_pyramid(tmp_path_factory.mktemp("os") / "pyr.tif", image, 4, request.param)


def test_openslide_reads_every_level_pixel_for_pixel_like_tifffile(exact_pyramid):
    path, levels = exact_pyramid
    with _open_tiff(path) as tf, _open_openslide(path) as osl:
        assert (tf.backend, osl.backend) == ("tifffile", "openslide")
        assert len(osl.levels) == len(tf.levels) == 4
        assert [lv.shape for lv in osl.levels] == [lv.shape for lv in tf.levels] == [lv.shape for lv in levels]
        assert osl.downsamples == tf.downsamples == [1.0, 2.0, 4.0, 8.0]
        assert osl.mpp == tf.mpp == pytest.approx(MPP)
        for i, level in enumerate(levels):
            h, w = level.shape[:2]
            np.testing.assert_array_equal(osl.read_region(0, 0, w, h, i), level)
            np.testing.assert_array_equal(tf.read_region(0, 0, w, h, i), level)
            for x, y, rw, rh in _edge_regions(w, h):
                a, b = tf.read_region(x, y, rw, rh, i), osl.read_region(x, y, rw, rh, i)
                assert a.shape == b.shape == (rh, rw, 3)
                np.testing.assert_array_equal(b, a, err_msg=f"level {i} region {(x, y, rw, rh)}")
            # and through the level arrays (what napari shows), odd slices
            np.testing.assert_array_equal(osl.levels[i][1 : h - 2, 3:w:1], level[1 : h - 2, 3:w])
        np.testing.assert_array_equal(osl.thumbnail(100), tf.thumbnail(100))


def test_non_integral_downsamples_resample_within_the_rounding_bound(tmp_path):
    """A 517×389 slide halved with odd sizes: downsamples ≈ 1.996, 3.97, 7.95.  Level 0 and every level's
    origin are exact; elsewhere OpenSlide resamples at the level-0 corner divided by the downsample, and the
    backend's rounding of that corner keeps each pixel within the bilinear bound of a shift of at most
    1/(2 ds): |error| ≤ (1/ds + 1/(4 ds²)) × the largest step to a neighbour (+1 for rounding)."""
    path, levels = write_page_pyramid(tmp_path / "odd.tif", _image(389, 517, seed=2), 4, "zlib", tile=(128, 128))
    with _open_tiff(path) as tf, _open_openslide(path) as osl:
        assert [lv.shape for lv in osl.levels] == [lv.shape for lv in levels]
        assert osl.downsamples == pytest.approx(tf.downsamples) and 1.99 < osl.downsamples[1] < 2.0
        h, w = levels[0].shape[:2]
        for x, y, rw, rh in _edge_regions(w, h):
            np.testing.assert_array_equal(osl.read_region(x, y, rw, rh), tf.read_region(x, y, rw, rh))
        for i in range(1, len(levels)):
            level, ds = levels[i].astype(int), osl.downsamples[i]
            lh, lw = level.shape[:2]
            np.testing.assert_array_equal(osl.read_region(0, 0, lw, lh, i), levels[i])
            padded = np.pad(level, ((1, 1), (1, 1), (0, 0)), mode="edge")
            step = np.max(
                [
                    np.abs(padded[1 + dy : 1 + dy + lh, 1 + dx : 1 + dx + lw] - level)
                    for dy in (-1, 0, 1)
                    for dx in (-1, 0, 1)
                ],
                axis=0,
            )
            bound = 1 / ds + 1 / (4 * ds**2)
            for x, y, rw, rh in [
                (1, 1, 9, 7),
                (3, 5, 33, 17),
                (lw // 2 + 1, lh // 2 + 3, 21, 19),
                (lw - 6, lh - 4, 6, 4),
            ]:
                got = osl.read_region(x, y, rw, rh, i).astype(int)
                err = np.abs(got - level[y : y + rh, x : x + rw])
                assert (err <= bound * step[y : y + rh, x : x + rw] + 1).all(), (i, (x, y), err.max())


def test_a_vendor_suffix_goes_through_the_real_library(exact_pyramid, tmp_path):
    path, levels = exact_pyramid
    mrxs = tmp_path / "slide.mrxs"
    shutil.copy(path, mrxs)
    with open_slide(mrxs) as slide:
        assert slide.backend == "openslide" and slide.mpp == pytest.approx(MPP)
        assert slide._handle.properties[openslide.PROPERTY_NAME_VENDOR] == "generic-tiff"
        np.testing.assert_array_equal(slide.read_region(5, 3, 40, 30, 1), levels[1][3:33, 5:45])


def test_unreadable_and_missing_openslide_are_one_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "slide.mrxs"
    path.write_bytes(b"not really")
    with pytest.raises(ImageReadError, match=r"slide.mrxs.*OpenSlide cannot read this file"):
        open_slide(path)
    monkeypatch.setitem(sys.modules, "openslide", None)  # the extra not installed: import fails
    with pytest.raises(ImageReadError, match=r"need the optional OpenSlide backend.*napari-mclstexp\[openslide\]"):
        open_slide(path)
