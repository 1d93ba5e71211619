"""Neighbour-aware prediction: blend each spot's (or tile's) retrieved expression with its neighbours'.

Expression is spatially smooth while a per-spot retrieval is not: each prediction is
``(1 - alpha) · own + alpha · mean(neighbours)``, the neighbours being the spots within
:data:`RADIUS` lattice spacings (the median nearest-neighbour distance) of the same section — the
4 + 4 diagonal neighbours of an ST array or a tile grid, the 6 of a Visium hexagon.  It uses only the
predicted section's own predictions (never measured counts).  ``alpha`` is chosen at training time on
held-out predictions of the training sections (:func:`choose_alpha`) and stored in the bundle
(``metadata['smoothing']``); bundles without it are not smoothed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

if TYPE_CHECKING:
    from ..bundle import Bundle

#: Neighbours lie within this many lattice spacings (√2 ≈ 1.41 < 1.5 < √3 ≈ 1.73: square and hex rings).
RADIUS = 1.5
#: The weights tried by :func:`choose_alpha`.
ALPHAS = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8)
#: ``metadata['smoothing']['method']`` of bundles whose weight was chosen so.
METHOD = "held-out retrieval of the training sections (leave one section out, or halves of one section)"


def neighbour_graph(xy: np.ndarray, radius: float = RADIUS) -> sparse.csr_matrix:
    """Row-normalised adjacency ``(N, N)`` of points within ``radius`` × their lattice spacing.

    Parameters
    ----------
    xy
        ``(N, 2)`` centres (any unit: full-res px, array indices).
    radius
        In lattice spacings (the median distance to the nearest other point).

    Returns
    -------
    scipy.sparse.csr_matrix
        Float32; row ``i`` averages the neighbours of ``i`` (an all-zero row: no neighbour).
    """
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    n = len(xy)
    if n < 2:
        return sparse.csr_matrix((n, n), dtype=np.float32)
    tree = cKDTree(xy)
    nearest = tree.query(xy, k=2)[0][:, 1]
    spacing = float(np.median(nearest[np.isfinite(nearest)]))
    if not spacing > 0:
        return sparse.csr_matrix((n, n), dtype=np.float32)
    pairs = tree.query_pairs(radius * spacing, output_type="ndarray")
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    adj = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))
    deg = np.asarray(adj.sum(axis=1)).ravel()
    return sparse.diags(np.where(deg > 0, 1.0 / np.maximum(deg, 1), 0.0).astype(np.float32)) @ adj


def smooth(pred: np.ndarray, graph: sparse.csr_matrix, alpha: float) -> np.ndarray:
    """``(1 - alpha) · pred + alpha · graph @ pred``; points without neighbours keep their own values."""
    pred = np.asarray(pred, np.float32)
    if alpha <= 0 or graph.shape[0] == 0:
        return pred
    has = np.asarray(graph.getnnz(axis=1) > 0)
    out = pred.copy()
    out[has] = (1.0 - alpha) * pred[has] + alpha * (graph @ pred)[has]
    return out


def smooth_sections(pred: np.ndarray, xy: np.ndarray, sections: Sequence[Any], alpha: float) -> np.ndarray:
    """:func:`smooth` within each section separately (no neighbour across sections)."""
    pred = np.asarray(pred, np.float32)
    if alpha <= 0:
        return pred
    out = pred.copy()
    sections = np.asarray(sections)
    for name in dict.fromkeys(sections.tolist()):
        idx = np.flatnonzero(sections == name)
        out[idx] = smooth(pred[idx], neighbour_graph(np.asarray(xy)[idx]), alpha)
    return out


def _mean_r(pred: np.ndarray, truth: np.ndarray) -> float:
    p = pred - pred.mean(0)
    t = truth - truth.mean(0)
    den = np.sqrt((p * p).sum(0) * (t * t).sum(0))
    ok = den > 0
    return float(((p * t).sum(0)[ok] / den[ok]).mean()) if ok.any() else float("nan")


def choose_alpha(
    pred: np.ndarray,
    truth: np.ndarray,
    xy: np.ndarray,
    sections: Sequence[Any],
    alphas: Sequence[float] = ALPHAS,
) -> dict[str, Any]:
    """The blending weight that maximises the mean per-section ACG of held-out predictions.

    Parameters
    ----------
    pred, truth
        ``(N, G)`` held-out predictions of training spots and their measured values (same scale).
    xy, sections
        Their centres and section names (smoothing stays within a section).
    alphas
        Candidates.

    Returns
    -------
    dict
        ``alpha`` (the best), ``scores`` (``{alpha: mean ACG}``), ``radius``, ``method``.
    """
    sections = np.asarray(sections)
    names = list(dict.fromkeys(sections.tolist()))
    truth = np.asarray(truth, np.float64)
    scores = {}
    for a in alphas:
        sm = smooth_sections(pred, xy, sections, float(a)).astype(np.float64)
        scores[float(a)] = float(np.nanmean([_mean_r(sm[sections == s], truth[sections == s]) for s in names]))
    finite = {a: v for a, v in scores.items() if np.isfinite(v)}
    best = max(finite, key=finite.get) if finite else 0.0
    return {"alpha": best, "scores": {str(a): v for a, v in scores.items()}, "radius": RADIUS, "method": METHOD}


def bundle_alpha(bundle: Bundle, smooth_on: bool | float = True) -> float:
    """The weight to predict with: the bundle's chosen one, ``0`` when off or not chosen, or a given float."""
    if smooth_on is False or smooth_on is None:
        return 0.0
    if smooth_on is not True:
        return float(smooth_on)
    info = (getattr(bundle, "metadata", None) or {}).get("smoothing") or {}
    return float(info.get("alpha", 0.0) or 0.0)
