"""Several genes of one prediction at once: a 3-gene colour composite (one layer, a legend on the canvas)
and small multiples (one layer per gene in napari's grid, linked pan/zoom, each named by gene and
held-out reliability).  The data are made in :mod:`napari_mclstexp.layer_data.multi`."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..layer_data import KEY, layer_adata
from ..layer_data.colors import auto_limits
from ..layer_data.multi import MAX_CELLS, composite, composite_layer, gene_layer
from ..prediction_meta import gene_values
from ._canvas import show_colorbar, show_scale_bar
from ._canvas_follow import follow_selection
from ._common import add_layer_tuples
from ._grid import GridView

#: ``values(layer, gene)``: a gene's values as the layer shows them (``None`` when it lacks the gene).
Values = Callable[[object, str], "np.ndarray | None"]


def _mpp(layer) -> float | None:
    meta = layer.metadata.get(KEY, {}) if isinstance(layer.metadata, dict) else {}
    return meta.get("mpp")


def cell_title(gene: str, r: float | None) -> str:
    """``KRT8 · r 0.62`` (the gene alone when its held-out reliability is unknown)."""
    return f"{gene} · r {r:.2f}" if r is not None and math.isfinite(r) else str(gene)


def show_composite(viewer, layer, genes: list[str], palette: str, values: Values | None = None):
    """Add (or replace) the composite of ``genes`` of ``layer``'s predictions over it, selected, with
    its legend (genes, colours, limits) on the canvas.  Returns the new layer.

    ``values(layer, gene)``: the values the layer shows (Explore's: measured counts on the predictions'
    normalised scale); default the layer's ``X`` as stored (predictions)."""
    adata = layer_adata(layer)
    genes = [g for g in genes if g]
    columns = None
    if values is not None and all(g in adata.var_names for g in genes):
        columns = [values(layer, g) for g in genes]
    comp = composite(adata, genes, palette, columns=columns)
    data, kwargs, kind = composite_layer(adata, comp, _mpp(layer))
    for old in [other for other in viewer.layers if other.metadata.get(KEY, {}).get("role") == "composite"]:
        if old.metadata[KEY].get("adata") is adata:
            viewer.layers.remove(old)
    (added,) = add_layer_tuples(viewer, [(data, kwargs, kind)])
    added.metadata[KEY]["composite"] = comp
    follower = follow_selection(viewer)
    viewer.layers.selection.active = added
    follower.update()
    show_scale_bar(viewer)
    return added


class SmallMultiples:
    """Up to nine genes of one prediction, one grid cell each, on the shared :class:`GridView`."""

    def __init__(self, viewer, grid: GridView | None = None) -> None:
        self.viewer = viewer
        self.grid = grid or GridView(viewer)
        self.layers: list = []

    def show(
        self,
        layer,
        genes: list[str],
        reliability: dict[str, float],
        cmap: str = "viridis",
        values: Values | None = None,
    ) -> list:
        """One layer per gene of ``layer``'s predictions (each its own robust limits), in a grid
        (``values`` as in :func:`show_composite`).

        Raises
        ------
        ValueError
            No gene, more than nine, or a gene the predictions lack.
        """
        adata = layer_adata(layer)
        genes = [str(g) for g in genes]
        if not 1 <= len(genes) <= MAX_CELLS:
            raise ValueError(f"small multiples take 1 to {MAX_CELLS} genes, not {len(genes)}")
        missing = [g for g in genes if g not in adata.var_names]
        if missing:
            raise ValueError(f"{', '.join(missing)} not in {layer.name}")
        self.close()
        tuples = []
        for gene in genes:
            shown = gene_values(adata, gene) if values is None else values(layer, gene)
            title = cell_title(gene, reliability.get(gene))
            tuples.append(
                gene_layer(
                    adata, gene, auto_limits(shown), _mpp(layer), cmap=cmap, name=title, title=title, values=shown
                )
            )
        # the first gene on top: napari fills the grid from the top layer
        self.layers = add_layer_tuples(self.viewer, tuples[::-1])
        show_colorbar(self.layers[-1], cmap, self.layers[-1].metadata[KEY]["limits"])
        self.grid.show(self.layers, owned=self.layers)
        self.viewer.layers.selection.active = self.layers[-1]
        follow_selection(self.viewer).update()
        return self.layers[::-1]

    def close(self) -> None:
        """Back to one view (the cells removed)."""
        if self.layers:
            self.grid.close()
            self.layers = []
