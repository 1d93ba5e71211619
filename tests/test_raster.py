"""Rasters of binned data: one pixel per bin, NaN elsewhere, placed so each bin lies on its slide pixel."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.io.visium_hd import read_visium_hd
from napari_mclstexp.raster import BinRaster, GeneColumns, raster_of
from napari_mclstexp.synthetic.visium_hd import HDGeometry, write_visium_hd


@pytest.fixture(scope="module")
def hd8(tmp_path_factory):
    root = tmp_path_factory.mktemp("r") / "HDR"
    write_visium_hd(root, n_rows=40, n_cols=48, bins=(2, 8), geometry=HDGeometry(0.5, (40.0, 30.0), 0.0), seed=5)
    return read_visium_hd(root, 8)


def test_raster_pixels_hold_bin_values_and_nan_elsewhere(hd8):
    raster = BinRaster.from_adata(hd8)
    values = np.arange(hd8.n_obs, dtype=np.float32)
    image = raster.image(values)
    assert image.shape == (int(np.ptp(hd8.obs["array_row"])) + 1, int(np.ptp(hd8.obs["array_col"])) + 1)
    assert np.isnan(image).sum() == image.size - hd8.n_obs  # corners outside the tissue ellipse
    i = hd8.obs_names.get_loc("s_008um_00005_00007-1")
    assert image[raster.rows[i], raster.cols[i]] == i
    np.testing.assert_array_equal(raster.lookup(np.stack([raster.rows, raster.cols], 1)), np.arange(hd8.n_obs))
    assert raster.lookup(np.array([[-1, 0]]))[0] == -1


def test_raster_lies_on_the_slide(hd8):
    raster = raster_of(hd8)
    affine = raster.affine(mpp=0.5)
    i = hd8.obs_names.get_loc("s_008um_00005_00007-1")
    world = affine @ np.array([raster.rows[i], raster.cols[i], 1.0])
    # the bin's centre is full-res px (x 158, y 116) (tests/io/test_visium_hd.py): × 0.5 µm/px
    np.testing.assert_allclose(world[:2], [116 * 0.5, 158 * 0.5])
    # one raster pixel = one 8 µm bin
    np.testing.assert_allclose(np.abs(np.linalg.det(affine[:2, :2])), 8.0 * 8.0)


def test_gene_columns_match_the_matrix(hd8):
    cols = GeneColumns(hd8)
    for gene in hd8.var_names[:3]:
        np.testing.assert_array_equal(cols(gene), hd8[:, gene].X.toarray().ravel())


def test_whole_slide_tile_grid(tmp_path):
    import anndata as ad
    import pandas as pd

    pred = ad.AnnData(
        np.ones((2, 1), np.float32), obs=pd.DataFrame({"array_row": [3, 4], "array_col": [2, 5]}, index=["a", "b"])
    )
    pred.uns["mclstexp"] = {"grid": {"step_px": 100, "origin_xy": [50.0, 60.0], "shape": [10, 10]}}
    raster = BinRaster.from_adata(pred)
    assert raster.shape == (2, 4)
    np.testing.assert_allclose(raster.affine() @ [0, 0, 1], [60 + 300, 50 + 200, 1])
    assert BinRaster.from_adata(ad.AnnData(np.ones((2, 1)))) is None
