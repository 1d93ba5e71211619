"""Tissue detection and per-tile tissue fractions."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.predict.tissue import pen_mask, tile_tissue_fraction, tissue_mask


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


def test_he_mask_rejects_faint_pink_glass_and_pen(rng):
    img = np.full((80, 240, 3), 232, np.uint8)  # glass
    img[:, :80] = np.clip(rng.normal([150, 110, 170], 12, size=(80, 80, 3)), 0, 255).astype(np.uint8)
    img[:, 80:160] = [226, 191, 218]  # faint pink haze on glass (her2st C4: saturation 0.16, OD 0.25)
    img[20:60, 180:220] = [40, 140, 60]  # green pen
    img[65:75, 180:220] = [20, 20, 30]  # black pen
    he = tissue_mask(img, method="he", min_object_px=16, max_hole_px=16)
    assert he[:, :78].mean() == 1.0
    assert he[:, 82:].mean() == 0.0
    # the saturation rule alone calls the haze and the green pen tissue (the bug this fixes)
    assert tissue_mask(img, min_object_px=16, max_hole_px=16)[:, 90:150].mean() > 0.9


def test_pen_mask_keeps_haematoxylin_and_eosin():
    he = np.array([[[146, 134, 173], [230, 150, 200], [90, 60, 140]]], np.uint8)
    ink = np.array([[[40, 140, 60], [30, 60, 200], [20, 20, 30]]], np.uint8)
    assert not pen_mask(he).any()
    assert pen_mask(ink)[0, 1]  # blue ink (dilation spreads the neighbours, so check each alone)
    for px in ink[0]:
        assert pen_mask(px[None, None]).all()


def test_c4_predicted_tiles_touch_tissue(her2st_dir):
    """≥ 95 % of the tiles whole-slide prediction keeps on her2st C4 touch tissue; the reference
    is the convex hull of the section's spots under tissue (not the mask), grown by one spot radius."""
    import pandas as pd
    from scipy.spatial import ConvexHull, Delaunay

    from napari_mclstexp.io.wsi import open_slide
    from napari_mclstexp.predict.slide import tile_grid
    from napari_mclstexp.predict.tissue import slide_tissue_mask

    spots = pd.read_csv(her2st_dir / "ST-spotfiles" / "C4_selection.tsv", sep="\t")
    xy = spots.loc[spots["selected"] == 1, ["pixel_x", "pixel_y"]].to_numpy(float)
    (image,) = (her2st_dir / "ST-imgs" / "C" / "C4").glob("*.jpg")
    patch = 224
    with open_slide(image) as slide:
        grid = tile_grid(slide.shape, patch, patch)
        rows, cols = np.indices(grid.shape).reshape(2, -1)
        centres = grid.centres(cols, rows)
        kept = {}
        for name, kwargs in {
            "he": {},
            "saturation": {"method": "saturation", "smooth_px": 1.0, "min_object_px": 64, "max_hole_px": 64},
        }.items():
            mask, scale = slide_tissue_mask(slide, **kwargs)
            kept[name] = centres[tile_tissue_fraction(mask, scale, centres, patch) >= 0.25]
    hull = xy[ConvexHull(xy).vertices]
    centre = hull.mean(axis=0)
    radius = 0.5 * 100 / 0.7  # a 100 µm spot at ≈ 0.7 µm/px
    grown = centre + (hull - centre) * (1 + radius / np.linalg.norm(hull - centre, axis=1))[:, None]
    inside = Delaunay(grown)
    corners = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1], [0, 0]]) * patch / 2

    def touching(tiles: np.ndarray) -> float:
        hit = np.zeros(len(tiles), bool)
        for d in corners:
            hit |= inside.find_simplex(tiles + d) >= 0
        return float(hit.mean())

    print({k: (len(v), round(touching(v), 3)) for k, v in kept.items()})
    assert len(kept["he"]) > 0.5 * len(kept["saturation"])  # the section itself is kept
    assert touching(kept["he"]) >= 0.95
    assert touching(kept["saturation"]) < 0.85  # the old default painted the glass


def test_hsv_planes_are_scikit_images_exactly():
    from skimage.color import rgb2hsv

    from napari_mclstexp.predict.tissue import rgb_to_hsv

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    levels = np.array([0, 1, 16, 128, 254, 255], np.uint8)  # grey, ties between two channels, black, white
    ties = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(1, -1, 3)
    for image in (noise, ties):
        expected = rgb2hsv(image)
        for plane, got in enumerate(rgb_to_hsv(image)):
            np.testing.assert_array_equal(got, expected[..., plane])
