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


def fullres_to_level(xy: np.ndarray, downsample: float) -> np.ndarray:
    """Full-resolution pixels → pixels of a level downsampled by ``downsample``."""
    return np.asarray(xy, dtype=float) / float(downsample)


def level_to_fullres(xy: np.ndarray, downsample: float) -> np.ndarray:
    """Pixels of a level downsampled by ``downsample`` → full-resolution pixels."""
    return np.asarray(xy, dtype=float) * float(downsample)


def px_to_um(px: float | np.ndarray, mpp: float) -> float | np.ndarray:
    """Pixels → micrometres given ``mpp`` (µm per full-resolution pixel)."""
    return np.asarray(px, dtype=float) * mpp if np.ndim(px) else float(px) * mpp


def um_to_px(um: float | np.ndarray, mpp: float) -> float | np.ndarray:
    """Micrometres → full-resolution pixels given ``mpp`` (µm per pixel)."""
    return np.asarray(um, dtype=float) / mpp if np.ndim(um) else float(um) / mpp
