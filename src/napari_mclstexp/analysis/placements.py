"""Random rigid placements of an annotation class over the tissue: the null of the region statistics.

Neighbouring spots (and smoothed predictions) are not independent, so shuffling spots between inside and
outside (a Mann–Whitney or a plain label permutation) makes any region look special.  Instead the class's
polygons are moved *as one rigid shape* — rotated by a random angle, mirrored half of the time, and centred
on a random tissue spot — and the spots under each moved copy form one draw of the null.  The copy keeps the
region's size, shape and spatial coherence; only its position relative to the expression pattern changes.
Copies that fall mostly off the tissue (covering fewer than ``min_cover`` × the spots the class covers)
are rejected.

Membership of a moved copy is looked up in a raster of the class (``RASTER_PX`` cells along the longer
side) for the spots a k-d tree finds within the class's reach of the copy's centre, which makes
hundreds of placements over 100k spots cost small array lookups, not polygon tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree
from skimage.draw import polygon2mask

from ..progress import CancelToken

#: Raster cells along the longer side of a class's bounding box.
RASTER_PX = 512
#: Candidate placements drawn per accepted one, at most.
MAX_TRIES_PER_PLACEMENT = 20
#: Tries between two looks at the cancel token (a try costs ~1 ms at 50k spots).
CANCEL_EVERY = 25


def class_raster(regions: Sequence, cells: int = RASTER_PX) -> tuple[np.ndarray, np.ndarray, float]:
    """Rasterise regions (objects with ``exterior`` and ``holes`` in px ``(x, y)``).

    Returns
    -------
    mask, origin, cell
        ``(H, W)`` bool mask (row = y), the ``(x, y)`` px of its corner, and px per cell.
    """
    rings = [r.exterior for r in regions]
    allxy = np.vstack(rings)
    lo, hi = allxy.min(axis=0), allxy.max(axis=0)
    cell = max(float((hi - lo).max()) / cells, 1e-6)
    shape = tuple(int(np.ceil(s / cell)) + 2 for s in (hi - lo)[::-1])
    mask = np.zeros(shape, dtype=bool)
    for region in regions:
        inner = polygon2mask(shape, (region.exterior - lo)[:, ::-1] / cell)
        for hole in region.holes:
            inner &= ~polygon2mask(shape, (hole - lo)[:, ::-1] / cell)
        mask |= inner
    return mask, lo, cell


def _lookup(mask: np.ndarray, origin: np.ndarray, cell: float, pts: np.ndarray) -> np.ndarray:
    """Mask values at ``(..., 2)`` px ``(x, y)`` (``False`` outside the raster)."""
    col = np.floor((pts[..., 0] - origin[0]) / cell).astype(np.int64)
    row = np.floor((pts[..., 1] - origin[1]) / cell).astype(np.int64)
    ok = (row >= 0) & (row < mask.shape[0]) & (col >= 0) & (col < mask.shape[1])
    out = np.zeros(pts.shape[:-1], dtype=bool)
    out[ok] = mask[row[ok], col[ok]]
    return out


def random_placements(
    xy: np.ndarray,
    regions: Sequence,
    n_placements: int,
    rng: np.random.Generator,
    *,
    n_observed: int,
    min_cover: float = 0.5,
    min_spots: int = 3,
    cancel: CancelToken | None = None,
) -> sparse.csr_matrix:
    """Spots covered by random rigid copies of a class.

    Parameters
    ----------
    xy
        ``(N, 2)`` spot centres, full-res px ``(x, y)`` (the tissue: copies are centred on these).
    regions
        The class's regions (``exterior``/``holes`` in the same px).
    n_placements
        Copies wanted.
    rng
        Random generator (seeded by the caller).
    n_observed
        Spots the class itself covers; a copy must cover at least ``min_cover`` × this (and
        ``min_spots``) and leave at least ``min_spots`` outside.
    cancel
        Checked every :data:`CANCEL_EVERY` tries (raises :class:`~napari_mclstexp.errors.Cancelled`).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(P, N)`` float32 0/1 memberships, ``P ≤ n_placements`` (fewer when the tissue leaves too little
        room, e.g. for a class covering most of it).
    """
    xy = np.asarray(xy, dtype=np.float64)
    n = len(xy)
    mask, origin, cell = class_raster(regions)
    rr, cc = np.nonzero(mask)
    centre = origin + cell * (np.array([cc.mean(), rr.mean()]) + 0.5)
    # only spots within the class's reach of a copy's centre can be under it: a k-d tree finds them
    reach = float(np.hypot(*(origin + cell * (np.stack([cc, rr], 1) + 0.5) - centre).T).max()) + cell
    tree = cKDTree(xy)
    low = max(min_spots, int(np.ceil(min_cover * n_observed)))
    rows: list[np.ndarray] = []
    for i in range(MAX_TRIES_PER_PLACEMENT * n_placements):
        if len(rows) == n_placements:
            break
        if cancel is not None and i % CANCEL_EVERY == 0:
            cancel.raise_if_cancelled()
        theta, flip = rng.uniform(0.0, 2 * np.pi), rng.random() < 0.5
        target = xy[rng.integers(0, n)] + rng.uniform(-0.5, 0.5, 2) * cell
        near = np.asarray(tree.query_ball_point(target, reach), dtype=np.int64)
        # spot s is under the copy T(p) = R(θ) F (p − c) + q  ⇔  F R(−θ) (s − q) + c lies in the class
        d = xy[near] - target
        u = np.cos(theta) * d[:, 0] + np.sin(theta) * d[:, 1]
        v = -np.sin(theta) * d[:, 0] + np.cos(theta) * d[:, 1]
        back = np.stack([-u if flip else u, v], axis=1) + centre
        under = np.sort(near[_lookup(mask, origin, cell, back)])
        if low <= len(under) <= n - min_spots:
            rows.append(under)
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    indices = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    data = np.ones(len(indices), dtype=np.float32)
    return sparse.csr_matrix((data, indices, indptr), shape=(len(rows), n))
