"""Coordinate conventions in one place.

Engine arrays store spot centres as full-resolution image pixels ``(x = column, y = row)``
(scverse ``obsm['spatial']``).  napari speaks ``(row, column)``.  Pyramid level ``L`` is downsampled by
``downsample[L]`` relative to level 0.
"""

from __future__ import annotations

import numpy as np


def xy_to_rowcol(xy: np.ndarray) -> np.ndarray:
    """Convert ``(N, 2)`` image ``(x, y)`` pixels to napari ``(row, col)``."""
    xy = np.asarray(xy, dtype=float)
    return xy[:, ::-1].copy()


def rowcol_to_xy(rc: np.ndarray) -> np.ndarray:
    """Convert ``(N, 2)`` napari ``(row, col)`` to image ``(x, y)`` pixels."""
    rc = np.asarray(rc, dtype=float)
    return rc[:, ::-1].copy()
