"""Several genes, several slides: a 3-gene colour composite, and one layer per gene or per slide for
grids (small multiples, slides side by side), without Qt.

A composite is additive: gene *k* is scaled to 0–1 between its own limits (2nd–98th percentile by
default) and adds ``scaled × colour_k`` to each observation's RGB (clipped at 1).  With the red/green/blue
palette the composite's channel *k* is gene *k*'s scaled value exactly.

Spots are drawn as Points up to :data:`RASTER_SPOTS`; more spots, bins and whole-slide tiles are drawn
as one image (a raster with one pixel per observation, :func:`observation_raster`): no per-shape loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..prediction_meta import gene_values
from ..raster import BinRaster
from .base import KEY, _library, _nearest_spacing, spots_layer, world_units
from .colors import auto_limits, values_to_rgba

#: Colours (RGB 0–1) of the composite's three channels.
PALETTES: dict[str, np.ndarray] = {
    "red/green/blue": np.eye(3, dtype=np.float32),
    "magenta/cyan/yellow": np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0]], dtype=np.float32),
}
#: Default contrast limits of a composite channel (percentiles of the finite values).
CHANNEL_PERCENTILES = (2.0, 98.0)
#: Above this many spots a layer is drawn as a raster image rather than as Points.
RASTER_SPOTS = 100_000
#: At most this many genes in a composite, and cells in a grid.
MAX_CHANNELS, MAX_CELLS = 3, 9


@dataclass
class Composite:
    """Up to three genes of one prediction as one RGBA colour per observation.

    Attributes
    ----------
    genes
        The genes, one per channel.
    colors
        ``(k, 3)`` RGB 0–1 of each channel.
    limits
        Each channel's ``(low, high)`` in the gene's unit.
    scaled
        ``(N, k)`` each gene between its limits, clipped to 0–1 (NaN → 0).
    rgba
        ``(N, 4)`` float32 additive colour (alpha 1).
    """

    genes: list[str]
    colors: np.ndarray
    limits: list[tuple[float, float]]
    scaled: np.ndarray
    rgba: np.ndarray = field(repr=False)

    @property
    def legend(self) -> tuple[list[str], np.ndarray, None]:
        """``(names, RGB 0–255, counts)`` for the canvas legend (names carry the limits)."""
        names = [f"{g} ({lo:.3g}–{hi:.3g})" for g, (lo, hi) in zip(self.genes, self.limits, strict=True)]
        return names, np.round(self.colors * 255).astype(int), None


def scale_to_unit(values: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    """``values`` between ``limits`` → 0–1 (clipped; NaN → 0)."""
    lo, hi = float(limits[0]), float(limits[1])
    out = (np.asarray(values, np.float32) - lo) / (hi - lo if hi > lo else 1.0)
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0).astype(np.float32, copy=False)


def composite(
    adata,
    genes: list[str],
    palette: str = "red/green/blue",
    *,
    limits: list[tuple[float, float]] | None = None,
    percentiles: tuple[float, float] = CHANNEL_PERCENTILES,
    columns: list[np.ndarray] | None = None,
) -> Composite:
    """The additive composite of up to three ``genes`` of ``adata`` (see the module's docstring).

    ``columns``: each gene's values per observation when ``X`` is not what is shown (measured counts:
    the caller normalises them as the measured layer shows them); default ``X``'s columns (predictions).

    Raises
    ------
    ValueError
        No gene, more than three, a gene not in ``adata``, or an unknown ``palette``.
    """
    genes = [str(g) for g in genes]
    if not 1 <= len(genes) <= MAX_CHANNELS:
        raise ValueError(f"a composite takes 1 to {MAX_CHANNELS} genes, not {len(genes)}")
    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        raise ValueError(f"{', '.join(missing)} not in the predictions of {_library(adata)}")
    if palette not in PALETTES:
        raise ValueError(f"unknown palette {palette!r}: one of {', '.join(PALETTES)}")
    columns = [gene_values(adata, g) for g in genes] if columns is None else [np.asarray(c) for c in columns]
    limits = list(limits) if limits is not None else [auto_limits(c, percentiles) for c in columns]
    scaled = np.stack([scale_to_unit(c, lim) for c, lim in zip(columns, limits, strict=True)], axis=1)
    colors = PALETTES[palette][: len(genes)]
    rgba = np.ones((len(scaled), 4), np.float32)
    rgba[:, :3] = np.clip(scaled @ colors, 0.0, 1.0)
    return Composite(genes, colors, [tuple(map(float, lim)) for lim in limits], scaled, rgba)


def observation_raster(adata) -> BinRaster:
    """Where each observation lies in a raster: the bins' or tiles' own grid, else a grid of scattered
    spots (half the spots' spacing per pixel, so neighbours rarely share a pixel)."""
    from ..coords import xy_to_rowcol
    from ..sample import spot_xy

    raster = BinRaster.from_adata(adata)
    if raster is not None:
        return raster
    rc = xy_to_rowcol(spot_xy(adata)).astype(np.float64)
    cell = max(_nearest_spacing(rc) / 2.0, 1e-6)
    origin = rc.min(axis=0) if len(rc) else np.zeros(2)
    idx = np.rint((rc - origin) / cell).astype(np.int64)
    shape = tuple(int(v) + 1 for v in idx.max(axis=0)) if len(idx) else (1, 1)
    affine = np.array([[cell, 0.0, origin[0]], [0.0, cell, origin[1]]])
    return BinRaster(idx[:, 0], idx[:, 1], shape, affine)


def drawn_as_raster(adata) -> bool:
    """Whether ``adata`` is drawn as an image: bins, whole-slide tiles, or more than :data:`RASTER_SPOTS`."""
    return BinRaster.from_adata(adata) is not None or adata.n_obs > RASTER_SPOTS


def _mpp(adata, mpp: float | None) -> float | None:
    from ..sample import microns_per_pixel

    try:
        return microns_per_pixel(adata) or mpp
    except Exception:  # noqa: BLE001 - a prediction without a recorded pixel size: px
        return mpp


def composite_layer(adata, comp: Composite, mpp: float | None = None, *, name: str | None = None) -> tuple:
    """The layer tuple of a composite: Points with RGBA face colours (hover shows each gene), or an RGBA
    image (alpha 0 where there is no observation) for rasters."""
    name = name or f"{_library(adata)} composite {'/'.join(comp.genes)}"
    names, colors, _ = comp.legend
    meta = {"role": "composite", "adata": adata, "genes": comp.genes, "limits": comp.limits}
    meta.update(legend=comp.legend, legend_title=f"{_library(adata)}: {' + '.join(comp.genes)}")
    if drawn_as_raster(adata):
        raster = observation_raster(adata)
        image = np.stack([raster.image(comp.rgba[:, c], fill=0.0) for c in range(4)], axis=-1)
        kwargs = {
            "name": name,
            "rgb": True,
            "affine": raster.affine(_mpp(adata, mpp)),
            "units": world_units(_mpp(adata, mpp)),
            "metadata": {KEY: {**meta, "raster": raster}},
        }
        return (image, kwargs, "image")
    data, kwargs, _ = spots_layer(adata, role="composite", name=name, mpp=mpp)
    kwargs["features"] = {g: comp.scaled[:, k] for k, g in enumerate(comp.genes)}
    kwargs["face_color"] = comp.rgba
    kwargs["opacity"] = 1.0
    kwargs["metadata"][KEY].update(meta)
    return (data, kwargs, "points")


def gene_layer(
    adata,
    gene: str,
    limits: tuple[float, float],
    mpp: float | None = None,
    *,
    cmap: str = "viridis",
    name: str | None = None,
    title: str | None = None,
    values: np.ndarray | None = None,
) -> tuple:
    """One cell of a grid: ``gene`` of ``adata`` between ``limits`` (Points, or an image for rasters).

    ``values``: the gene per observation when ``X`` is not what is shown (as in :func:`composite`).
    The layer's metadata records ``role='cell'``, the AnnData, ``gene``, ``limits`` and ``title``."""
    values = gene_values(adata, gene) if values is None else np.asarray(values, np.float32)
    name = name or f"{_library(adata)} {gene}"
    meta = {"role": "cell", "adata": adata, "gene": str(gene), "limits": tuple(limits), "title": title or name}
    if drawn_as_raster(adata):
        raster = observation_raster(adata)
        kwargs = {
            "name": name,
            "colormap": cmap,
            "contrast_limits": tuple(map(float, limits)),
            "affine": raster.affine(_mpp(adata, mpp)),
            "units": world_units(_mpp(adata, mpp)),
            "metadata": {KEY: {**meta, "raster": raster}},
        }
        return (raster.image(values), kwargs, "image")
    data, kwargs, _ = spots_layer(adata, role="cell", name=name, mpp=mpp, values=values)
    kwargs["face_color"] = values_to_rgba(values, cmap, limits)
    # the colours stay direct; napari's colour bar (shown for the selected cell) reads these
    kwargs.update(face_colormap=cmap, face_contrast_limits=tuple(map(float, limits)))
    kwargs["metadata"][KEY].update(meta)
    return (data, kwargs, "points")


def cell_values(layer_meta: dict, gene: str) -> np.ndarray | None:
    """``gene`` of a cell layer's AnnData as it is drawn: per spot, or as the cell's raster image."""
    adata = layer_meta.get("adata")
    if adata is None or gene not in adata.var_names:
        return None
    values = gene_values(adata, gene)
    return layer_meta["raster"].image(values) if "raster" in layer_meta else values


def shared_limits(adatas, gene: str, percentiles: tuple[float, float] = (1.0, 99.0)) -> tuple[float, float]:
    """One colour scale for ``gene`` over every prediction holding it (percentiles of all values)."""
    columns = [gene_values(a, gene) for a in adatas if gene in a.var_names]
    return auto_limits(np.concatenate(columns)) if columns else (0.0, 1.0)


def common_genes(adatas) -> list[str]:
    """The genes every prediction holds, in the first one's order."""
    if not adatas:
        return []
    shared = set.intersection(*(set(map(str, a.var_names)) for a in adatas))
    return [g for g in map(str, adatas[0].var_names) if g in shared]


def read_prediction_folder(folder: str | os.PathLike, limit: int = MAX_CELLS) -> list:
    """The ``.h5ad`` predictions of a folder (``predict --out-dir``), sorted by name, at most ``limit``.

    Raises
    ------
    napari_mclstexp.errors.InputError
        The folder is missing or holds no ``.h5ad``, or one cannot be read.
    """
    import anndata as ad

    from ..errors import InputError

    folder = Path(folder)
    paths = sorted(folder.glob("*.h5ad")) if folder.is_dir() else []
    if not paths:
        raise InputError(f"{folder}: no .h5ad predictions in this folder")
    out = []
    for path in paths[:limit]:
        try:
            out.append(ad.read_h5ad(path))
        except Exception as exc:  # noqa: BLE001 - one clear message naming the file
            raise InputError(f"{path}: cannot read predictions ({exc})") from exc
    return out
