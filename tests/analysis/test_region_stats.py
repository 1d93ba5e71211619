"""Region statistics: planted regions are found, random regions on smooth tissue are not."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage, stats

from napari_mclstexp.analysis.placements import random_placements
from napari_mclstexp.analysis.region_stats import COLUMNS, back_transform, region_statistics, top_genes
from napari_mclstexp.errors import InputError
from napari_mclstexp.io.annotations import AnnotationClass, Region

SPACING = 100.0  # px between spots
GRID = 40  # 40 × 40 spots


def _smooth_slide(seed: int, n_genes: int, sigma: float = 3.0) -> ad.AnnData:
    """Spots on a grid over a round tissue; each gene a smooth random field (log10_1e4-like values)."""
    rng = np.random.default_rng(seed)
    fields = ndimage.gaussian_filter(rng.normal(size=(n_genes, GRID, GRID)), (0, sigma, sigma))
    fields /= fields.std(axis=(1, 2), keepdims=True)
    rows, cols = np.mgrid[0:GRID, 0:GRID]
    keep = np.hypot(rows - GRID / 2 + 0.5, cols - GRID / 2 + 0.5) < GRID / 2  # a round tissue
    values = 1.0 + 0.3 * fields[:, keep].T + 0.1 * rng.normal(size=(int(keep.sum()), n_genes))
    a = ad.AnnData(values.astype(np.float32), var=pd.DataFrame(index=[f"G{i}" for i in range(n_genes)]))
    a.obsm["spatial"] = np.stack([cols[keep], rows[keep]], axis=1).astype(float) * SPACING
    a.uns["mclstexp"] = {"normalization": "log10_1e4"}
    return a


def _random_polygon(rng: np.random.Generator, centre: np.ndarray, radius: float) -> np.ndarray:
    angles = np.sort(rng.uniform(0, 2 * np.pi, 7))
    radii = radius * rng.uniform(0.6, 1.0, 7)
    return centre + np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None]


def test_back_transform_inverts_the_normalisations():
    counts = np.array([0.0, 3.0, 100.0])
    assert np.allclose(back_transform(np.log10(1 + counts), "log10_1e4"), counts)
    assert np.allclose(back_transform(np.log1p(counts), "ln_cpm"), counts)
    assert np.allclose(back_transform(counts, "none"), counts)


def test_planted_region_ranks_its_genes_first():
    slide = _smooth_slide(1, n_genes=60, sigma=1.5)
    xy = slide.obsm["spatial"]
    poly = _random_polygon(np.random.default_rng(3), np.array([1500.0, 1800.0]), 700.0)
    region = AnnotationClass("Tumor", (255, 0, 0), [Region(poly)])
    inside = region.contains(xy)
    slide.X[inside, 0:3] += 1.0  # up in the region (10x)
    slide.X[inside, 3] -= 0.8  # down
    slide.uns["mclstexp"]["reliability"] = {"genes": ["G0", "G1"], "r": [0.5, None], "threshold": 0.3}
    slide.obs["novelty"] = np.where(inside, 0.9, 0.1)
    table = region_statistics(slide, [region], n_placements=200, seed=0)
    assert list(table.columns) == list(COLUMNS) and len(table) == 60
    # ranked by the log2 fold change: the planted up genes first, the planted down gene last
    assert set(table["gene"].head(3)) == {"G0", "G1", "G2"} and table["gene"].iloc[-1] == "G3"
    assert table["log2_fold_change"].is_monotonic_decreasing
    top = table.set_index("gene")
    assert (top.loc[["G0", "G1", "G2"], "log2_fold_change"] > 0).all() and top.loc["G3", "log2_fold_change"] < 0
    assert (top.loc[["G0", "G1", "G2", "G3"], "p_adjusted"] < 0.005).all()
    # the log2 fold change is of the back-transformed means
    e_in = (10 ** slide.X[inside, 0].astype(float) - 1).mean()
    e_out = (10 ** slide.X[~inside, 0].astype(float) - 1).mean()
    assert top.loc["G0", "log2_fold_change"] == pytest.approx(np.log2((e_in + 0.01) / (e_out + 0.01)), rel=1e-4)
    assert top.loc["G0", "n_inside"] == inside.sum() and top.loc["G0", "reliability_r"] == pytest.approx(0.5)
    assert bool(top.loc["G0", "reliable"]) and np.isnan(top.loc["G5", "reliability_r"])
    assert top.loc["G0", "novelty_inside"] == pytest.approx(0.9)
    assert top.loc["G0", "novelty_outside"] == pytest.approx(0.1)
    assert top_genes(table, "Tumor", 3) == sorted(["G0", "G1", "G2"], key=lambda g: -top.loc[g, "log2_fold_change"])
    assert top_genes(table, "Tumor", 1, up=False, by="difference") == ["G3"]
    by_z = region_statistics(slide, [region], n_placements=200, seed=0, rank_by="z")
    assert by_z["z"].is_monotonic_decreasing and by_z["gene"].iloc[-1] == "G3"
    with pytest.raises(InputError, match="cannot rank genes by 'p'"):
        region_statistics(slide, [region], rank_by="p")


def _false_positive_rates(n_regions: int = 40, n_genes: int = 20) -> tuple[float, float, float]:
    """(fraction of region × gene tests with BH p < 0.05, fraction of regions with any, same for a spot-wise
    Mann–Whitney) for random regions placed on smooth fields with no planted signal."""
    rng = np.random.default_rng(7)
    hits = any_hits = naive = 0
    for i in range(n_regions):
        slide = _smooth_slide(100 + i, n_genes=n_genes)
        centre = slide.obsm["spatial"][rng.integers(slide.n_obs)]
        poly = _random_polygon(rng, centre, rng.uniform(400, 900))
        region = AnnotationClass("R", (0, 0, 255), [Region(poly)])
        inside = region.contains(slide.obsm["spatial"])
        if inside.sum() < 10:
            continue
        table = region_statistics(slide, [region], n_placements=100, seed=i)
        hits += int((table["p_adjusted"] < 0.05).sum())
        any_hits += int((table["p_adjusted"] < 0.05).any())
        p = stats.mannwhitneyu(slide.X[inside], slide.X[~inside], axis=0).pvalue
        naive += int((stats.false_discovery_control(p) < 0.05).sum())
    tests = n_regions * n_genes
    return hits / tests, any_hits / n_regions, naive / tests


def test_random_regions_on_smooth_tissue_are_rarely_significant():
    rate, any_rate, naive_rate = _false_positive_rates()
    assert rate <= 0.05 and any_rate <= 0.15
    assert naive_rate > 0.3  # a spot-wise test is fooled by the autocorrelation: the null matters


def test_placements_keep_size_and_stay_on_tissue():
    slide = _smooth_slide(0, n_genes=1)
    xy = slide.obsm["spatial"]
    poly = np.array([[1000.0, 1000.0], [1600.0, 1000.0], [1600.0, 1400.0], [1000.0, 1400.0]])
    n_in = int(Region(poly).contains(xy).sum())
    null = random_placements(xy, [Region(poly)], 50, np.random.default_rng(0), n_observed=n_in)
    counts = np.asarray(null.sum(axis=1)).ravel()
    assert null.shape == (50, len(xy)) and counts.min() >= 0.5 * n_in and counts.max() <= 1.35 * n_in
    assert len({tuple(r.indices) for r in null}) >= 45  # different positions (a grid repeats a few)


def test_class_covering_too_few_spots_warns_and_has_no_rows():
    slide = _smooth_slide(0, n_genes=3)
    tiny = AnnotationClass("dot", (0, 0, 0), [Region(np.array([[1.0, 1.0], [2.0, 1.0], [2.0, 2.0]]))])
    with pytest.warns(UserWarning, match="covers 0 of"):
        table = region_statistics(slide, [tiny])
    assert table.empty and list(table.columns) == list(COLUMNS)


def test_placement_sums_in_gene_blocks_equal_the_whole_product():
    from scipy import sparse

    from napari_mclstexp.analysis.region_stats import placement_sums

    rng = np.random.default_rng(0)
    null = sparse.random(20, 500, density=0.1, format="csr", random_state=1, dtype=np.float32)
    values = rng.normal(size=(500, 37)).astype(np.float32)
    whole = np.asarray(null @ values, dtype=np.float64)
    for ops in (1, null.nnz * 5, 1e12):  # one gene a block, five genes, everything at once
        np.testing.assert_allclose(placement_sums(null, values, ops), whole, rtol=1e-5)
