"""Binned samples (Visium HD) and their predictions as napari Image layers: one pixel per bin, placed by
an affine in µm so they lie on the slide, NaN outside tissue.  Points stay for sparse spots."""

from __future__ import annotations

import time

import numpy as np

from ..raster import GeneColumns, raster_of
from .base import KEY, _default_name, world_units
from .colors import auto_limits

#: Above this many observations on a grid, a sample is drawn as a raster rather than as Points.
RASTER_MIN_BINS = 0


def is_binned(adata) -> bool:
    """Whether ``adata`` is a binned sample (``uns['bin_grid']``, e.g. Visium HD) to draw as a raster."""
    return "bin_grid" in getattr(adata, "uns", {}) and raster_of(adata) is not None


def columns(adata) -> GeneColumns:
    """The :class:`~napari_mclstexp.raster.GeneColumns` of ``adata`` (one per AnnData, kept in ``uns``-free
    layer metadata by :func:`raster_layer`)."""
    return GeneColumns(adata)


def raster_layer(
    adata,
    mpp: float | None,
    *,
    role: str = "spots",
    gene: str | None = None,
    values: np.ndarray | None = None,
    name: str | None = None,
) -> tuple:
    """Image layer tuple of a binned sample (``role='spots'``) or of its predictions (``'predicted'``).

    Parameters
    ----------
    adata
        Binned AnnData (never modified).
    mpp
        µm per full-res px (world units µm when known).
    gene, values
        What to colour: ``values`` per bin, else ``gene`` (default: the first gene for predictions,
        total counts for measured bins).
    """
    raster = raster_of(adata)
    cols = columns(adata)
    if values is None:
        if gene is not None or role != "spots":
            gene = str(gene or adata.var_names[0])
            values = cols(gene)
        else:
            values = np.log1p(np.asarray(adata.X.sum(axis=1), dtype=np.float32).ravel())
    image = raster.image(values)
    finite = image[np.isfinite(image)]
    limits = auto_limits(finite) if finite.size else (0.0, 1.0)
    kwargs = {
        "name": name or (f"predicted {gene}" if role == "predicted" else _default_name(adata, role)),
        "colormap": "viridis",
        "opacity": 0.8,
        "blending": "translucent",
        "affine": raster.affine(mpp),
        "contrast_limits": limits,
        "units": world_units(mpp),
        "metadata": {KEY: {"role": role, "adata": adata, "mpp": mpp, "raster": raster, "columns": cols}},
    }
    return (image, kwargs, "image")


def set_raster_values(layer, values: np.ndarray, cmap: str, limits: tuple[float, float]) -> float:
    """Swap the raster of ``layer`` for ``values`` (per bin); returns seconds spent in napari's update."""
    meta = layer.metadata[KEY]
    image = meta["raster"].image(values)
    t0 = time.perf_counter()
    layer.data = image
    layer.colormap = cmap
    layer.contrast_limits = limits
    return time.perf_counter() - t0


def raster_gene_values(layer, gene: str) -> np.ndarray | None:
    """Values of ``gene`` per bin of a raster layer (fast column read), or ``None`` when absent."""
    meta = layer.metadata.get(KEY, {})
    adata = meta.get("adata")
    if adata is None or gene not in adata.var_names:
        return None
    return meta["columns"](gene)
