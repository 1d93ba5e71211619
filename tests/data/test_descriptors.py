"""Tissue descriptors (version 2): per-cell statistics equal the per-pixel definitions (scikit-image's LBP, the
colour histogram, colour deconvolution; percentiles within a bin), a grid of tiles described cell by cell
equals its reads described one by one, and the regions of a synthetic slide separate as with version 1."""

import numpy as np
import pytest

from napari_mclstexp.data import descriptors_v1
from napari_mclstexp.data.descriptors import (
    CELL_PX,
    HED_STEP,
    MARGIN,
    N_DESCRIPTORS,
    PER_VIEW,
    READ_PX,
    grid_descriptors,
    histogram_features,
    read_edge,
    tissue_descriptors,
)


@pytest.fixture
def reads():
    return np.random.default_rng(0).integers(0, 256, (4, READ_PX, READ_PX, 3), dtype=np.uint8)


def _cell(reads, row=1, col=1):
    lo_y, lo_x = MARGIN + row * CELL_PX, MARGIN + col * CELL_PX
    return np.ascontiguousarray(reads[:, lo_y : lo_y + CELL_PX, lo_x : lo_x + CELL_PX])


def test_colour_features_are_the_histogram_features_of_the_views(reads):
    d = tissue_descriptors(reads)
    assert d.shape == (4, N_DESCRIPTORS) and d.dtype == np.float32
    inner = np.ascontiguousarray(reads[:, MARGIN:-MARGIN, MARGIN:-MARGIN])
    np.testing.assert_allclose(d[:, :30], histogram_features(_cell(reads)), atol=1e-5)
    np.testing.assert_allclose(d[:, PER_VIEW : PER_VIEW + 30], histogram_features(inner), atol=1e-5)


def test_texture_codes_are_scikit_images_uniform_lbp_with_the_margin_as_neighbours(reads):
    from skimage.feature import local_binary_pattern

    d = tissue_descriptors(reads)
    for read, row in zip(reads, d, strict=True):
        grey = (read.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
        expected = []
        for radius, points in ((1, 8), (3, 16)):
            codes = local_binary_pattern(grey, points, radius, "uniform")
            spot = codes[MARGIN + CELL_PX : MARGIN + 2 * CELL_PX, MARGIN + CELL_PX : MARGIN + 2 * CELL_PX]
            expected += list(np.bincount(spot.astype(int).ravel(), minlength=points + 2) / spot.size)
        np.testing.assert_allclose(row[45:PER_VIEW], expected, atol=1e-6)


def test_stains_match_version_1_means_exactly_and_percentiles_within_a_bin():
    rng = np.random.default_rng(3)
    # H&E-like colours (the densities stay inside the histogram's range)
    reads = np.clip(rng.normal((190, 120, 180), 35, (3, READ_PX, READ_PX, 3)), 40, 255).astype(np.uint8)
    ours = tissue_descriptors(reads)[:, 30:45]
    v1 = descriptors_v1.stain_features(_cell(reads))
    np.testing.assert_allclose(ours[:, :6], v1[:, :6], rtol=1e-4, atol=1e-5)  # mean, std: the same sums
    np.testing.assert_allclose(ours[:, 6:], v1[:, 6:], atol=HED_STEP)  # 10/50/90th percentiles from bins
    assert np.abs(ours[:, 6:] - v1[:, 6:]).max() > 1e-5  # they are read from the histogram, not exact


def test_spot_view_is_the_central_cell_and_context_the_whole(reads):
    base = tissue_descriptors(reads)
    outside = reads.copy()
    outside[:, : MARGIN + CELL_PX - 4] = 255  # the cells above the spot's, beyond its texture's circles
    changed = tissue_descriptors(outside)
    np.testing.assert_array_equal(changed[:, :PER_VIEW], base[:, :PER_VIEW])
    assert np.abs(changed[:, PER_VIEW:] - base[:, PER_VIEW:]).max() > 0.01
    inside = reads.copy()
    inside[:, MARGIN + CELL_PX : MARGIN + 2 * CELL_PX, MARGIN + CELL_PX : MARGIN + 2 * CELL_PX] = 255
    assert np.abs(tissue_descriptors(inside)[:, :PER_VIEW] - base[:, :PER_VIEW]).max() > 0.01


@pytest.mark.parametrize("step", [CELL_PX, CELL_PX // 2, 12])  # tiles touching, overlapping by half, off-grid
def test_grid_of_tiles_described_once_equals_each_read_described(step):
    from napari_mclstexp.synthetic import region_map, render_he

    rng = np.random.default_rng(5)
    image = render_he(region_map((260, 260), 4, rng, smooth_px=60), rng)
    offsets = np.array([(x, y) for y in range(0, 5 * step, step) for x in range(0, 4 * step, step)])
    offsets[:, 0] += 7  # the grid need not start at the image's corner
    each = tissue_descriptors(np.stack([image[y : y + READ_PX, x : x + READ_PX] for x, y in offsets]))
    np.testing.assert_allclose(grid_descriptors(image, offsets), each, rtol=1e-5, atol=1e-6)
    assert np.abs(each[0] - each[-1]).max() > 0.01  # the tiles do differ


def test_reads_of_another_size_are_resized_and_bad_shapes_refused(reads):
    assert read_edge(CELL_PX) == READ_PX and read_edge(224) == 728
    assert tissue_descriptors(np.ascontiguousarray(reads[:, ::2, ::2])).shape == (4, N_DESCRIPTORS)
    assert tissue_descriptors(np.zeros((0, READ_PX, READ_PX, 3), np.uint8)).shape == (0, N_DESCRIPTORS)
    with pytest.raises(ValueError, match="square"):
        tissue_descriptors(np.zeros((2, 10, 12, 3), np.uint8))


def _region_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))
    return float(cross_val_score(model, x, y, cv=4).mean())


def test_regions_of_a_synthetic_slide_separate_as_with_version_1(monkeypatch):
    from napari_mclstexp.synthetic import region_map, render_he, slides

    # one colour for every region: they differ only in their nuclei (how many, how large): texture and stain
    monkeypatch.setattr(slides, "REGION_COLOURS", np.repeat(slides.REGION_COLOURS[:1], 6, axis=0))
    rng = np.random.default_rng(2)
    regions = region_map((900, 900), 4, rng, smooth_px=150)
    image = render_he(regions, rng)
    patch = 48
    centres = [(x, y) for y in range(160, 740, 24) for x in range(160, 740, 24)]
    labels = np.array([regions[y, x] for x, y in centres])

    def cut(edge: int) -> np.ndarray:
        return np.stack(
            [image[y - edge // 2 : y - edge // 2 + edge, x - edge // 2 : x - edge // 2 + edge] for x, y in centres]
        )

    new = tissue_descriptors(cut(read_edge(patch)))
    old = descriptors_v1.tissue_descriptors(cut(3 * patch))
    acc_new, acc_old = _region_accuracy(new, labels), _region_accuracy(old, labels)
    chance = np.bincount(labels).max() / len(labels)
    assert acc_old > chance + 0.2  # the task is learnable from nuclei alone
    assert acc_new >= acc_old - 0.03
    shuffled = _region_accuracy(new, np.random.default_rng(0).permutation(labels))  # negative control
    assert shuffled < chance + 0.1


def _torch_matches_numpy(images, device) -> None:
    import torch

    from napari_mclstexp.data.descriptors import cell_statistics, cell_statistics_torch

    ours = cell_statistics(images, CELL_PX)
    theirs = cell_statistics_torch(torch.from_numpy(images).to(device), CELL_PX)
    assert theirs.shape == ours.shape
    counts = slice(0, ours.shape[-1] - 12)
    moved = np.abs(theirs[..., counts] - ours[..., counts]).sum(-1) / 2  # pixels whose code differs, per cell
    assert moved.max() <= 0.005 * CELL_PX * CELL_PX * 6  # at a bin's very edge only (float32 rounding)
    np.testing.assert_allclose(theirs[..., -12:], ours[..., -12:], rtol=1e-5)


def test_torch_statistics_are_numpys(reads):
    _torch_matches_numpy(reads, "cpu")


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="CUDA: needs a CUDA device")
def test_cuda_statistics_are_numpys_and_grid_descriptors_run_there(reads):
    import torch

    _torch_matches_numpy(reads, "cuda")
    offsets = np.array([(0, 0), (CELL_PX, 0)])
    image = np.random.default_rng(1).integers(0, 256, (READ_PX, READ_PX + CELL_PX, 3), dtype=np.uint8)
    on_gpu = grid_descriptors(image, offsets, torch.device("cuda"))
    np.testing.assert_allclose(on_gpu, grid_descriptors(image, offsets), atol=5e-3)
