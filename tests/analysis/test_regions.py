"""Region review: genes ranked inside vs outside a drawn region."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from napari_mclstexp.analysis.regions import rank_genes_in_region, spots_in_mask, spots_in_polygons
from napari_mclstexp.errors import InputError


def test_polygon_in_napari_order_selects_spots_by_xy():
    xy = np.array([[10.0, 90.0], [90.0, 10.0], [50.0, 50.0]])  # (x, y)
    # square covering rows 0..60 and cols 0..100, given as (row, col): contains y<60
    square = np.array([[0, 0], [0, 100], [60, 100], [60, 0]], dtype=float)
    assert spots_in_polygons(xy, [square]).tolist() == [False, True, True]
    # a triangle that is thin in rows but wide in columns only takes the (90, 10) spot
    tri = np.array([[0, 80], [0, 100], [20, 100]], dtype=float)
    assert spots_in_polygons(xy, [square[:0], tri]).tolist() == [False, True, False]


def test_mask_with_scale():
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[0:5, :] = 1  # top half (rows 0..4 → y 0..49 at scale 10)
    xy = np.array([[5.0, 5.0], [5.0, 55.0], [500.0, 5.0]])
    assert spots_in_mask(xy, mask, scale=10).tolist() == [True, False, False]


@pytest.mark.parametrize("as_sparse", [False, True])
def test_rank_genes_values(as_sparse):
    X = np.array([[4.0, 1.0, 0.0], [2.0, 1.0, 0.0], [0.0, 3.0, 0.0], [0.0, 5.0, 0.0]])
    inside = np.array([True, True, False, False])
    table = rank_genes_in_region(sparse.csr_matrix(X) if as_sparse else X, ["A", "B", "C"], inside)
    assert table["gene"].tolist() == ["A", "C", "B"]
    a = table.set_index("gene").loc["A"]
    assert a.mean_inside == pytest.approx(3.0) and a.mean_outside == pytest.approx(0.0)
    assert a.difference == pytest.approx(3.0)
    b = table.set_index("gene").loc["B"]
    assert b.fold_change == pytest.approx(1.0 / 4.0, rel=1e-4)
    assert b.log2_fold_change == pytest.approx(-2.0, rel=1e-4)
    assert (table.n_inside == 2).all() and (table.n_outside == 2).all()


def test_rank_genes_errors():
    with pytest.raises(InputError, match="no spot"):
        rank_genes_in_region(np.ones((3, 2)), ["a", "b"], np.zeros(3, bool))
    with pytest.raises(InputError, match="entries"):
        rank_genes_in_region(np.ones((3, 2)), ["a", "b"], np.ones(2, bool))
