"""Slides side by side: several predictions in napari's grid (one cell each, linked pan/zoom) on one
shared colour scale per gene, stated on the canvas; one gene switch recolours every slide.

Cells are the layers of :func:`napari_mclstexp.layer_data.multi.gene_layer`: Points up to
:data:`~napari_mclstexp.layer_data.multi.RASTER_SPOTS` spots, rasters beyond (and for bins and tiles).
"""

from __future__ import annotations

import time

from napari.layers import Points

from ..layer_data import KEY
from ..layer_data.base import _library
from ..layer_data.multi import MAX_CELLS, cell_values, common_genes, gene_layer, shared_limits
from ._canvas import show_gene
from ._colors import set_points_values
from ._common import add_layer_tuples
from ._grid import GridView


def shared_title(gene: str, limits: tuple[float, float], n: int) -> str:
    """``KRT8 · one scale for 4 slides: 0.12–3.4``."""
    return f"{gene} · one scale for {n} slides: {limits[0]:.3g}–{limits[1]:.3g}"


class SlideGrid:
    """Up to nine predictions, one cell each, coloured by one gene between the same limits."""

    def __init__(self, viewer, grid: GridView | None = None) -> None:
        self.viewer = viewer
        self.grid = grid or GridView(viewer)
        self.layers: list = []
        self.genes: list[str] = []
        self.gene: str | None = None
        self.limits: tuple[float, float] = (0.0, 1.0)
        self.cmap = "viridis"
        self.last_switch_ms = float("nan")

    def show(self, adatas: list, gene: str | None = None, *, mpps=None, cmap: str = "viridis") -> list:
        """One cell per prediction in ``adatas`` (in order), coloured by ``gene`` (default: the first
        gene they all hold).

        Raises
        ------
        ValueError
            No prediction, more than nine, or no gene common to all.
        """
        if not 1 <= len(adatas) <= MAX_CELLS:
            raise ValueError(f"a slide grid takes 1 to {MAX_CELLS} predictions, not {len(adatas)}")
        self.genes = common_genes(adatas)
        if not self.genes:
            raise ValueError("these predictions share no gene")
        self.close()
        self.cmap = cmap
        gene = str(gene) if gene in self.genes else self.genes[0]
        limits = shared_limits(adatas, gene)
        mpps = list(mpps) if mpps is not None else [None] * len(adatas)
        tuples = [
            gene_layer(a, gene, limits, mpp, cmap=cmap, name=f"{_library(a)} ({i + 1})")
            for i, (a, mpp) in enumerate(zip(adatas, mpps, strict=True))
        ]
        self.layers = add_layer_tuples(self.viewer, tuples[::-1])[::-1]  # the first slide in the first cell
        for layer in self.layers:
            layer.metadata[KEY]["role"] = "slide_cell"
        self.grid.show(self.layers[::-1], owned=self.layers)
        self.set_gene(gene)
        return self.layers

    def set_gene(self, gene: str) -> float:
        """Colour every cell by ``gene`` between the limits shared by all; returns ms of the switch."""
        if gene not in self.genes or not self.layers:
            return float("nan")
        t0 = time.perf_counter()
        adatas = [layer.metadata[KEY]["adata"] for layer in self.layers]
        self.gene, self.limits = str(gene), shared_limits(adatas, gene)
        title = shared_title(self.gene, self.limits, len(self.layers))
        for layer in self.layers:
            meta = layer.metadata[KEY]
            values = cell_values(meta, self.gene)
            if isinstance(layer, Points):
                set_points_values(layer, values, self.cmap, self.limits)
            else:
                layer.data = values
                layer.colormap = self.cmap
                layer.contrast_limits = self.limits
            meta["limits"] = self.limits
            show_gene(self.viewer, layer, self.gene, self.cmap, self.limits, title)
        from ._canvas_follow import follow_selection

        self.viewer.layers.selection.active = self.layers[0]
        follow_selection(self.viewer).update()
        self.last_switch_ms = 1e3 * (time.perf_counter() - t0)
        return self.last_switch_ms

    def close(self) -> None:
        """Back to one view (the cells removed)."""
        if self.layers:
            self.grid.close()
            self.layers = []
