"""The tissue descriptors' per-pixel loops on the CPU, compiled (numba): texture codes and per-cell tallies.

:func:`lbp_codes_cpu` is :func:`.descriptors.lbp_codes` bit for bit.  The numpy form samples the circle one
point at a time over the whole batch, writing a float image per point and comparing it; this loop keeps one
image row of running counts and reads each sample where it lies (~8× less time per whole-slide tile).  Every
float operation is the numpy form's, in its order and in float32 (bilinear weights computed in float64 and
rounded to float32, as numpy casts a Python float against a float32 array), so the codes are equal, not close.

:func:`cell_tallies` counts each cell's pixels per colour bin, stain-density bin and texture code and sums their
values, in one pass over the pixels instead of a code array, a ``bincount`` and four reductions: the counts and
integer sums are equal, the stain sums equal to float64 rounding (summed in another order).

Compiled on first use (a second or two), cached on disk by numba; the loops release the GIL, so the reading
threads run them side by side.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np

#: A circle sample's fractional offset at most this lies on the grid: its bilinear term is left out (here and in
#: :func:`.descriptors._shifted`).
ON_GRID = 1e-6


@lru_cache(maxsize=8)
def circle_taps(radius: int, points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per circle point: ``(points, 2)`` int64 ``(y0, x0)`` offsets of the sample's top-left neighbour,
    ``(points, 4)`` float32 bilinear weights, and ``(points, 4)`` bool: whether :func:`.descriptors._shifted`
    adds each term (it leaves out those of an offset on the grid)."""
    offsets = np.empty((points, 2), np.int64)
    weights = np.zeros((points, 4), np.float32)
    terms = np.zeros((points, 4), np.bool_)
    for p, a in enumerate(2 * np.pi * np.arange(points) / points):
        dy, dx = -radius * np.sin(a), radius * np.cos(a)
        y0, x0 = int(np.floor(dy)), int(np.floor(dx))
        fy, fx = dy - y0, dx - x0
        offsets[p] = y0, x0
        weights[p] = (1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx
        terms[p] = True, fx > ON_GRID, fy > ON_GRID, fy > ON_GRID and fx > ON_GRID
    return offsets, weights, terms


@numba.njit(cache=True, nogil=True)
def _codes(grey, offsets, weights, terms, m, points):  # pragma: no cover - compiled; tested through lbp_codes_cpu
    n, h, w = grey.shape
    width = w - 2 * m
    out = np.empty((n, h - 2 * m, width), np.int32)
    ones = np.empty(width, np.int32)
    changes = np.empty(width, np.int32)
    first = np.empty(width, np.bool_)
    previous = np.empty(width, np.bool_)
    step = np.float32(1e-4)
    for i in range(n):
        for y in range(m, h - m):
            ones[:] = 0
            changes[:] = 0
            centre = grey[i, y]
            for p in range(points):
                top = grey[i, y + offsets[p, 0]]
                below = grey[i, y + offsets[p, 0] + 1] if terms[p, 2] else top
                w0, w1, w2, w3 = weights[p, 0], weights[p, 1], weights[p, 2], weights[p, 3]
                t1, t2, t3 = terms[p, 1], terms[p, 2], terms[p, 3]
                shift = m + offsets[p, 1]
                for x in range(width):
                    at = x + shift
                    v = w0 * top[at]
                    if t1:
                        v = v + w1 * top[at + 1]
                    if t2:
                        v = v + w2 * below[at]
                    if t3:
                        v = v + w3 * below[at + 1]
                    bit = v >= centre[x + m] - step
                    ones[x] += bit
                    if p == 0:
                        first[x] = bit
                    elif bit != previous[x]:
                        changes[x] += 1
                    previous[x] = bit
            for x in range(width):
                turns = changes[x] + (1 if previous[x] != first[x] else 0)
                out[i, y - m, x] = ones[x] if turns <= 2 else points + 1
    return out


def lbp_codes_cpu(grey: np.ndarray, radius: int, points: int, m: int) -> np.ndarray:
    """:func:`.descriptors.lbp_codes` of float32 ``(N, H, W)`` grey images, compiled: int32 ``(N, H − 2m, W − 2m)``.

    Raises
    ------
    ValueError
        ``grey`` is not float32 ``(N, H, W)`` (another dtype would round otherwise than the numpy form), or ``m``
        is less than ``radius``.
    """
    grey = np.asarray(grey)
    if grey.dtype != np.float32 or grey.ndim != 3:
        raise ValueError(f"expected float32 (N, H, W) grey images, got {grey.dtype} {grey.shape}")
    if m < radius:
        raise ValueError(f"a {m} px margin cannot hold circle samples {radius} px away")
    offsets, weights, terms = circle_taps(int(radius), int(points))
    return _codes(np.ascontiguousarray(grey), offsets, weights, terms, int(m), int(points))


@numba.njit(cache=True, nogil=True)
def _tallies(inner, hed, lbp1, lbp3, width, cell, rows, cols, layout, hed_scale, hed_top):  # pragma: no cover
    n, npix = inner.shape[0], inner.shape[1]
    colour, stain, first, second, n_counts = layout[0], layout[1], layout[2], layout[3], layout[4]
    n_bins, hed_bins = layout[5], layout[6]
    counts = np.zeros((n, rows, cols, n_counts), np.float64)
    whole = np.zeros((n, rows, cols, 6), np.int64)  # sums of R, G, B and of their squares
    floats = np.zeros((n, rows, cols, 6), np.float64)  # sums of H, E, DAB and of their squares
    for i in range(n):
        for p in range(npix):
            r, c = (p // width) // cell, (p % width) // cell
            for k in range(3):
                v = inner[i, p, k]
                counts[i, r, c, colour + k * n_bins + (v >> 5)] += 1.0
                whole[i, r, c, k] += v
                whole[i, r, c, 3 + k] += np.int64(v) * v
                d = hed[i, p, k]
                b = d * hed_scale
                if b > hed_top:
                    b = hed_top
                counts[i, r, c, stain + k * hed_bins + np.int32(b)] += 1.0
                floats[i, r, c, k] += d
                floats[i, r, c, 3 + k] += np.float64(d) * np.float64(d)
            counts[i, r, c, first + lbp1[i, p]] += 1.0
            counts[i, r, c, second + lbp3[i, p]] += 1.0
    return counts, whole, floats


def cell_tallies(
    inner: np.ndarray,
    hed: np.ndarray,
    lbp: tuple[np.ndarray, np.ndarray],
    grid: tuple[int, int, int, int],
    layout: tuple[int, ...],
    hed_step: float,
) -> np.ndarray:
    """Per-cell statistics of :func:`.descriptors.cell_statistics` from its per-pixel values, in one pass.

    Parameters
    ----------
    inner
        uint8 ``(N, P, 3)`` RGB of the pixels inside the margin, row major (``P`` = rows·cell × cols·cell).
    hed
        float32 ``(N, P, 3)`` haematoxylin, eosin and DAB amounts of those pixels (not negative).
    lbp
        The two int ``(N, P)`` texture codes (radius 1, radius 3).
    grid
        ``(rows, cols, cell, width)``: cells down and across, the cell's edge and the row's width in px.
    layout
        Offsets of the colour bins, stain bins, the two texture codes, the number of counts, then the colour
        bins per channel and the stain bins per channel.
    hed_step
        Width of a stain-density bin (densities past the last bin count in it).

    Returns
    -------
    np.ndarray
        float64 ``(N, rows, cols, counts + 12)``: the counts, then the sums of R, G, B, their squares, H, E, DAB and
        their squares.
    """
    rows, cols, cell, width = (int(v) for v in grid)
    first, second = (np.ascontiguousarray(v.reshape(len(inner), -1), np.int32) for v in lbp)
    counts, whole, floats = _tallies(
        np.ascontiguousarray(inner),
        np.ascontiguousarray(hed, np.float32),
        first,
        second,
        width,
        cell,
        rows,
        cols,
        np.asarray(layout, np.int64),
        np.float32(1.0 / hed_step),
        np.float32(layout[6] - 1),
    )
    return np.concatenate([counts, whole.astype(np.float64), floats], axis=3)
