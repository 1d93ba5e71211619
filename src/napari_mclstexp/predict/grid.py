"""The regular tile grid of whole-slide prediction and the one-pixel-per-tile image of its values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TileGrid:
    """A regular grid of tiles over a slide.

    Attributes
    ----------
    step_px
        Distance between neighbouring tile centres (full-res px).
    origin_xy
        Centre of tile (col 0, row 0) in full-res px (x, y).
    shape
        ``(rows, cols)``.
    patch_px
        Edge of the image crop read around each centre (full-res px).
    """

    step_px: int
    origin_xy: tuple[float, float]
    shape: tuple[int, int]
    patch_px: int

    def centres(self, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``(N, 2)`` full-res (x, y) centres of tiles at grid ``cols``, ``rows``."""
        return np.stack([self.origin_xy[0] + cols * self.step_px, self.origin_xy[1] + rows * self.step_px], 1)

    def indices(self, xy: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`centres`: ``(N, 2)`` int (col, row) of tile centres ``xy``."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return np.rint((xy - np.asarray(self.origin_xy)) / self.step_px).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        """JSON/h5ad-friendly form stored in ``uns['mclstexp']['grid']``."""
        return {
            "step_px": int(self.step_px),
            "origin_xy": [float(v) for v in self.origin_xy],
            "shape": [int(v) for v in self.shape],
            "patch_px": int(self.patch_px),
        }


def tile_grid(slide_shape: tuple[int, int], step_px: int, patch_px: int) -> TileGrid:
    """Grid covering a ``(height, width)`` slide with one tile per ``step_px`` square block."""
    step_px = int(step_px)
    if step_px < 1:
        raise ValueError(f"step must be at least 1 px, got {step_px}")
    h, w = slide_shape
    shape = (max(1, math.ceil(h / step_px)), max(1, math.ceil(w / step_px)))
    return TileGrid(step_px, (step_px / 2.0, step_px / 2.0), shape, int(patch_px))


def grid_image(pred: Any, values: np.ndarray | str, fill: float = np.nan) -> np.ndarray:
    """Scatter per-tile values of a whole-slide prediction into a ``(rows, cols)`` float32 image.

    Parameters
    ----------
    pred
        AnnData returned by :func:`predict_whole_slide`.
    values
        ``(N,)`` values per tile, or a gene name (a column of ``pred.X``), or ``"uncertainty"``.
    fill
        Value of grid cells without a prediction (background).

    Returns
    -------
    np.ndarray
        One pixel per tile; pixel (row, col) covers full-res pixels
        ``[origin + (col - 1/2)·step, origin + (col + 1/2)·step)`` (napari: ``scale=(step, step)``,
        ``translate=(origin_y, origin_x)``).
    """
    grid = pred.uns["mclstexp"]["grid"]
    if isinstance(values, str):
        if values == "uncertainty":
            values = pred.obs["uncertainty"].to_numpy()
        else:
            values = np.asarray(pred[:, values].X).ravel()
    img = np.full(tuple(int(v) for v in grid["shape"]), fill, dtype=np.float32)
    img[pred.obs["array_row"].to_numpy(), pred.obs["array_col"].to_numpy()] = np.asarray(values, np.float32)
    return img
