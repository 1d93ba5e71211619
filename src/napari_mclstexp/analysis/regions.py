"""Region review: rank genes by mean predicted expression inside vs outside a drawn region.

A pathologist draws a polygon (napari Shapes, ``(row, col)`` vertices) over the slide; spots whose
centres fall inside are compared with all other spots, gene by gene.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from skimage.measure import points_in_poly

from ..errors import InputError


def spots_in_polygons(xy: np.ndarray, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """Which spots lie inside any of ``polygons``.

    Parameters
    ----------
    xy
        ``(N, 2)`` spot centres in full-resolution image pixels ``(x, y)``.
    polygons
        Each ``(V, 2)`` vertices in the same pixels, **napari order ``(row, col)``** (as a Shapes
        layer stores them once divided by the layer scale).

    Returns
    -------
    numpy.ndarray
        ``(N,)`` bool, ``True`` where the spot centre is inside at least one polygon.
    """
    xy = np.asarray(xy, dtype=float)
    inside = np.zeros(len(xy), dtype=bool)
    for poly in polygons:
        poly = np.asarray(poly, dtype=float)
        if poly.ndim != 2 or poly.shape[0] < 3:
            continue
        # (row, col) → (x, y); extra leading dims (e.g. a z axis) ignored
        inside |= points_in_poly(xy, poly[:, -2:][:, ::-1])
    return inside


def spots_in_mask(xy: np.ndarray, mask: np.ndarray, *, scale: float = 1.0) -> np.ndarray:
    """Which spots fall on ``True`` pixels of a 2-D mask.

    Parameters
    ----------
    xy
        ``(N, 2)`` spot centres, full-resolution pixels ``(x, y)``.
    mask
        ``(H, W)`` bool or label mask (non-zero = inside), each mask pixel covering ``scale``
        full-resolution pixels along both axes.
    scale
        Full-resolution pixels per mask pixel.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` bool; spots outside the mask's extent are outside.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"region mask must be 2-D, got shape {mask.shape}")
    col = np.floor(np.asarray(xy, dtype=float)[:, 0] / scale).astype(int)
    row = np.floor(np.asarray(xy, dtype=float)[:, 1] / scale).astype(int)
    ok = (row >= 0) & (row < mask.shape[0]) & (col >= 0) & (col < mask.shape[1])
    inside = np.zeros(len(col), dtype=bool)
    inside[ok] = mask[row[ok], col[ok]] != 0
    return inside


def rank_genes_in_region(
    X: np.ndarray | sparse.spmatrix,
    genes: Sequence[str],
    inside: np.ndarray,
    *,
    pseudocount: float = 1e-6,
) -> pd.DataFrame:
    """Rank genes by mean expression inside vs outside a region.

    Parameters
    ----------
    X
        ``(N, G)`` expression (predicted, normalised; dense or sparse).
    genes
        ``G`` gene names.
    inside
        ``(N,)`` bool: spots inside the region.
    pseudocount
        Added to both means before the fold change, so empty genes do not divide by zero.

    Returns
    -------
    pandas.DataFrame
        One row per gene, sorted by ``difference`` (descending), columns ``gene``, ``mean_inside``,
        ``mean_outside``, ``difference`` (inside − outside), ``fold_change``
        ((inside + pc) / (outside + pc)), ``log2_fold_change``, ``n_inside``, ``n_outside``
        (spot counts). Means over an empty side are NaN.

    Raises
    ------
    InputError
        When shapes disagree or no spot is inside the region.
    """
    inside = np.asarray(inside, dtype=bool)
    n, g = X.shape
    if inside.shape != (n,):
        raise InputError(f"region mask has {inside.shape[0]} entries but there are {n} spots")
    if len(genes) != g:
        raise InputError(f"{len(genes)} gene names for {g} expression columns")
    n_in = int(inside.sum())
    if n_in == 0:
        raise InputError("no spot lies inside the region: draw it over the spots")
    n_out = n - n_in

    def side_mean(rows: np.ndarray, count: int) -> np.ndarray:
        if count == 0:
            return np.full(g, np.nan)
        sub = X[rows]
        return np.asarray(sub.mean(axis=0), dtype=float).ravel()

    m_in = side_mean(inside, n_in)
    m_out = side_mean(~inside, n_out)
    fold = (m_in + pseudocount) / (m_out + pseudocount)
    with np.errstate(divide="ignore", invalid="ignore"):
        log2fc = np.log2(fold)
    table = pd.DataFrame(
        {
            "gene": list(genes),
            "mean_inside": m_in,
            "mean_outside": m_out,
            "difference": m_in - m_out,
            "fold_change": fold,
            "log2_fold_change": log2fc,
            "n_inside": n_in,
            "n_outside": n_out,
        }
    )
    return table.sort_values("difference", ascending=False, kind="stable").reset_index(drop=True)
