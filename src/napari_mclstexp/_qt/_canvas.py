"""What the colours show, on the canvas itself: the gene's name (and its held-out reliability) as
the viewer's text overlay, a colour bar for the coloured layer, and the scale bar.

Points coloured through RGBA arrays have no napari colour bar of their own; their colour manager is
given the colormap and limits (the colours stay as set, ``direct``) so the Points ``face_colorbar``
draws the same scale as the spots.
"""

from __future__ import annotations

import math

from napari.layers import Points

from ..layer_data import KEY


def gene_title(gene: str, r: float | None = None, threshold: float | None = None) -> str:
    """``KRT8 · predicted (normalised) · held-out r 0.62`` (``⚠ unreliable`` below ``threshold``)."""
    title = f"{gene} · predicted (normalised)"
    if r is not None and math.isfinite(r):
        title += f" · held-out r {r:.2f}"
        if threshold is not None and r < threshold:
            title += " ⚠ unreliable"
    return title


def show_colorbar(layer, colormap: str, limits: tuple[float, float]) -> None:
    """Show the canvas colour bar of ``layer`` (Image: its own; Points: its face colours' scale)."""
    if isinstance(layer, Points):
        layer.face_colormap = colormap  # colours stay direct: only the bar reads these
        layer.face_contrast_limits = tuple(map(float, limits))
        layer.face_colorbar.visible = True
    elif hasattr(layer, "colorbar"):
        layer.colorbar.visible = True


def hide_colorbar(layer) -> None:
    """Hide ``layer``'s canvas colour bar (e.g. a measured pair)."""
    bar = getattr(layer, "face_colorbar", None) or getattr(layer, "colorbar", None)
    if bar is not None:
        bar.visible = False


def show_gene(viewer, layer, gene: str, colormap: str, limits: tuple[float, float], title: str) -> None:
    """Name ``gene`` on the canvas (text overlay, top left), its colour bar, and the scale bar."""
    show_colorbar(layer, colormap, limits)
    text = viewer.canvas.overlays.text
    text.text = title
    text.position = "top_left"  # the colour bar takes the top right
    text.font_size = 12
    text.visible = True
    meta = layer.metadata.get(KEY)
    if isinstance(meta, dict):
        meta["gene"], meta["title"] = str(gene), title
        meta.pop("legend", None)  # coloured by the gene now, no longer by categories
    show_scale_bar(viewer)


def show_scale_bar(viewer) -> None:
    """Turn the scale bar on (layers carry µm ``units`` when the pixel size is known)."""
    bar = viewer.canvas.overlays.scale_bar
    bar.position = "bottom_right"  # before it shows: napari builds its visuals then, once
    bar.visible = True


def show_predicted_gene(viewer, layer, gene: str, values) -> None:
    """Name a predicted ``gene`` with its held-out reliability and its colour bar (viridis, robust limits) on the
    canvas; the layer's builder (:func:`~napari_mclstexp.layer_data.predicted_spots_layer`, ``dense_layer``)
    coloured it."""
    from ..analysis.reliability import RELIABLE_R, reliability_map
    from ..layer_data import layer_adata
    from ._colors import auto_limits

    limits = auto_limits(values)
    r = reliability_map(layer_adata(layer).uns.get("mclstexp", {}).get("reliability")).get(gene)
    show_gene(viewer, layer, gene, "viridis", limits, gene_title(gene, r, RELIABLE_R))
