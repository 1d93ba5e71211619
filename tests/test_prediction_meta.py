"""prediction_meta: one reader of what uns['mclstexp'] holds, for spot and whole-slide predictions."""

from __future__ import annotations

import anndata as ad
import numpy as np
from scipy import sparse

from napari_mclstexp import prediction_meta as meta


def test_spot_and_whole_slide_predictions_are_told_apart():
    plain = ad.AnnData(np.ones((3, 2), np.float32))
    assert not meta.is_prediction(plain) and not meta.is_whole_slide(plain) and meta.info(plain) == {}
    spots = plain.copy()
    spots.uns["mclstexp"] = {"bundle": {"preset": "quick", "normalization": "ln_cpm"}, "mode": "spots"}
    assert meta.is_prediction(spots) and not meta.is_whole_slide(spots) and meta.grid(spots) is None
    assert meta.normalization(spots) == "ln_cpm"  # from the bundle when the top level lacks it
    tiles = plain.copy()
    tiles.uns["mclstexp"] = {
        "bundle": {},
        "mode": "whole_slide",
        "normalization": "log10_1e4",
        "grid": {"step_px": 112, "origin_xy": [0, 0], "shape": [2, 2]},
    }
    assert meta.is_whole_slide(tiles) and meta.grid(tiles)["step_px"] == 112
    assert meta.normalization(tiles) == "log10_1e4"
    tiles.uns["mclstexp"] = "not a mapping"
    assert meta.info(tiles) == {} and meta.normalization(tiles) is None


def test_gene_values_dense_and_sparse():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    a = ad.AnnData(sparse.csr_matrix(x))
    a.var_names = ["A", "B"]
    np.testing.assert_array_equal(meta.gene_values(a), [0, 2, 4])
    np.testing.assert_array_equal(meta.gene_values(ad.AnnData(x, var=a.var), "B"), [1, 3, 5])
