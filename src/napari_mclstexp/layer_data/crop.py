"""A lazy crop of a slide's display levels: the same pixels, read only where napari slices them.

Used for the slide under the second half of the measured-beside-predicted view: a copy of the slide cut to
the tissue, so that it can sit beside the slide without covering it.  Numpy levels are cut as views; lazy
levels (:mod:`napari_mclstexp.io.wsi_levels`) are wrapped, so no pixel is read before it is drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class CroppedLevel:
    """Rows ``r0:r1`` and columns ``c0:c1`` of an (H, W[, C]) array-like, itself an array-like (``shape``,
    ``dtype``, ``ndim``, ``size``, ``__getitem__`` with ints, slices and index arrays, ``__array__``)."""

    def __init__(self, base: Any, rows: tuple[int, int], cols: tuple[int, int]) -> None:
        self.base = base
        self.r0, self.c0 = int(rows[0]), int(cols[0])
        self.shape = (int(rows[1]) - self.r0, int(cols[1]) - self.c0, *tuple(base.shape)[2:])
        self.dtype = np.dtype(base.dtype)
        self.ndim = len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape))

    @staticmethod
    def _plan(key: Any, n: int, offset: int) -> tuple[slice, Any]:
        """What to read from the base along one axis (a forward slice) and what to take of that read."""
        if isinstance(key, slice) and key.indices(n)[2] > 0:
            start, stop, step = key.indices(n)
            return slice(start + offset, max(stop, start) + offset, step), slice(None)
        if isinstance(key, (int, np.integer)):
            index = int(key) + n if key < 0 else int(key)
            if not 0 <= index < n:
                raise IndexError(f"index {key} is outside a crop of {n}")
            return slice(index + offset, index + offset + 1), 0
        return slice(offset, offset + n), key  # reversed slices, index arrays: read the crop's extent

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            at = next(i for i, k in enumerate(key) if k is Ellipsis)
            key = key[:at] + (slice(None),) * (self.ndim - len(key) + 1) + key[at + 1 :]
        key = key + (slice(None),) * (self.ndim - len(key))
        rows, take_rows = self._plan(key[0], self.shape[0], self.r0)
        cols, take_cols = self._plan(key[1], self.shape[1], self.c0)
        data = np.asarray(self.base[(rows, cols, *key[2:])])
        return data[take_rows, take_cols]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:, :]
        return out.astype(dtype) if dtype is not None else out


def crop_levels(levels: list, rows: tuple[float, float], cols: tuple[float, float]) -> list:
    """Each display level cut to the level-0 box ``rows`` × ``cols`` (px, clipped to the image; a level
    ``d`` times smaller is cut to the box divided by ``d``, rounded outwards)."""
    height, width = levels[0].shape[:2]
    out = []
    for level in levels:
        fy, fx = height / level.shape[0], width / level.shape[1]
        r0 = int(np.clip(np.floor(rows[0] / fy), 0, level.shape[0] - 1))
        r1 = int(np.clip(np.ceil(rows[1] / fy), r0 + 1, level.shape[0]))
        c0 = int(np.clip(np.floor(cols[0] / fx), 0, level.shape[1] - 1))
        c1 = int(np.clip(np.ceil(cols[1] / fx), c0 + 1, level.shape[1]))
        out.append(level[r0:r1, c0:c1] if isinstance(level, np.ndarray) else CroppedLevel(level, (r0, r1), (c0, c1)))
    return out
