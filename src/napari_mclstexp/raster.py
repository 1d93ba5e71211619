"""Binned data and dense predictions as rasters: one pixel per bin (or tile), NaN where there is none.

Visium HD sections hold ~700,000 bins: far too many for napari Points, cheap as an image.  A
:class:`BinRaster` places the grid (``uns['bin_grid']`` of :func:`~napari_mclstexp.io.visium_hd.read_visium_hd`,
or the tile grid ``uns['mclstexp']['grid']`` of a whole-slide prediction) in the world: its
:meth:`~BinRaster.affine` maps raster (row, col) to napari world (y, x) in µm (px when µm/px is
unknown), so the raster lies exactly on the slide.  :class:`GeneColumns` serves one gene's values fast
(a CSC copy of sparse counts, made once), so a gene switch is a column read plus a scatter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from anndata import AnnData


@dataclass(frozen=True)
class BinRaster:
    """Where each observation falls in a raster, and where the raster lies on the slide.

    Attributes
    ----------
    rows, cols
        Raster index of each observation (int64, length N).
    shape
        Raster (rows, cols).
    grid_affine
        (2, 3): raster (row, col, 1) → full-res pixel (y, x).
    """

    rows: np.ndarray
    cols: np.ndarray
    shape: tuple[int, int]
    grid_affine: np.ndarray

    @classmethod
    def from_adata(cls, adata: AnnData) -> BinRaster | None:
        """The raster of a binned sample (``uns['bin_grid']``) or a whole-slide prediction
        (``uns['mclstexp']['grid']``); ``None`` for spots that are not on a grid."""
        if "array_row" not in adata.obs or "array_col" not in adata.obs or adata.n_obs == 0:
            return None
        rows = adata.obs["array_row"].to_numpy(np.int64)
        cols = adata.obs["array_col"].to_numpy(np.int64)
        if "bin_grid" in adata.uns:
            affine = np.asarray(adata.uns["bin_grid"]["affine"], dtype=np.float64).reshape(2, 3)
        else:
            grid = adata.uns.get("mclstexp", {}).get("grid") if isinstance(adata.uns.get("mclstexp"), dict) else None
            if not grid:
                return None
            step, (x0, y0) = float(grid["step_px"]), grid["origin_xy"]
            affine = np.array([[step, 0.0, float(y0)], [0.0, step, float(x0)]])
        r0, c0 = int(rows.min()), int(cols.min())
        # shift so the raster starts at the first occupied row/column (no empty margin to draw)
        affine = affine.copy()
        affine[:, 2] += affine[:, 0] * r0 + affine[:, 1] * c0
        shape = (int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1)
        return cls(rows - r0, cols - c0, shape, affine)

    @property
    def flat(self) -> np.ndarray:
        """Flat (row-major) raster index of each observation (cached: a gene switch is one scatter)."""
        cached = self.__dict__.get("_flat")
        if cached is None:
            cached = self.rows * self.shape[1] + self.cols
            object.__setattr__(self, "_flat", cached)
        return cached

    def image(self, values: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """(rows, cols) float32 raster of per-observation ``values``; ``fill`` where no observation."""
        out = np.full(self.shape, fill, dtype=np.float32)
        np.put(out, self.flat, np.asarray(values, dtype=np.float32))
        return out

    def labels(self, values: np.ndarray) -> np.ndarray:
        """(rows, cols) int32 raster of integer labels (0 = background; give labels ≥ 1)."""
        out = np.zeros(self.shape, dtype=np.int32)
        out[self.rows, self.cols] = values
        return out

    def affine(self, mpp: float | None = None) -> np.ndarray:
        """(3, 3) napari affine: raster (row, col) → world (y, x) in µm (× ``mpp``; px when ``None``)."""
        out = np.eye(3)
        out[:2, :] = self.grid_affine * (float(mpp) if mpp else 1.0)
        return out

    def lookup(self, raster_rc: np.ndarray) -> np.ndarray:
        """Observation index at raster (row, col) positions (N, 2) int; -1 where there is none."""
        index = np.full(self.shape, -1, dtype=np.int64)
        index[self.rows, self.cols] = np.arange(len(self.rows))
        rc = np.asarray(raster_rc, dtype=np.int64).reshape(-1, 2)
        inside = (rc >= 0).all(1) & (rc[:, 0] < self.shape[0]) & (rc[:, 1] < self.shape[1])
        out = np.full(len(rc), -1, dtype=np.int64)
        out[inside] = index[rc[inside, 0], rc[inside, 1]]
        return out


class GeneColumns:
    """Fast access to one gene's values of a large AnnData (CSC copy of sparse ``X``, made on first use)."""

    def __init__(self, adata: AnnData) -> None:
        self.adata = adata
        self._csc: sparse.csc_matrix | None = None

    def __call__(self, gene: str) -> np.ndarray:
        """float32 values of ``gene`` over all observations."""
        j = self.adata.var_names.get_loc(gene)
        X = self.adata.X
        if sparse.issparse(X):
            if self._csc is None:
                self._csc = sparse.csc_matrix(X)
            csc = self._csc
            lo, hi = csc.indptr[j], csc.indptr[j + 1]
            col = np.zeros(csc.shape[0], np.float32)
            col[csc.indices[lo:hi]] = csc.data[lo:hi]  # no intermediate sparse matrix
        else:
            col = np.asarray(X[:, j])
        return col.ravel().astype(np.float32, copy=False)


def raster_image(adata: AnnData, values: np.ndarray) -> np.ndarray:
    """Raster of ``values`` on the sample's grid (:meth:`BinRaster.from_adata`), cached on ``adata.uns``-free
    storage per AnnData object.

    Raises
    ------
    ValueError
        ``adata`` has no grid.
    """
    raster = raster_of(adata)
    if raster is None:
        raise ValueError("this sample has no bin or tile grid to draw as a raster")
    return raster.image(values)


_RASTERS: dict[int, tuple[Any, BinRaster | None]] = {}


def raster_of(adata: AnnData) -> BinRaster | None:
    """:meth:`BinRaster.from_adata`, computed once per AnnData object (it is never modified)."""
    hit = _RASTERS.get(id(adata))
    if hit is not None and hit[0] is adata:
        return hit[1]
    if len(_RASTERS) > 16:
        _RASTERS.clear()
    raster = BinRaster.from_adata(adata)
    _RASTERS[id(adata)] = (adata, raster)
    return raster
