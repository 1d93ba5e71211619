"""What the colours show, on the canvas itself: the gene's name (and its held-out reliability) as
the viewer's text overlay, a colour bar for the coloured layer, and the scale bar.

Points coloured through RGBA arrays have no napari colour bar of their own; their colour manager is
given the colormap and limits (the colours stay as set, ``direct``) so the Points ``face_colorbar``
draws the same scale as the spots.
"""

from __future__ import annotations

import math
import textwrap

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


#: Canvas pixels at the top right that the colour bar and its tick labels take: the title stays left of them.
COLORBAR_PX = 120
#: Width of a title character in canvas pixels per point of font size (napari's text overlay, worst case).
CHAR_PX_PER_PT = 1.0


def fitted_title(title: str, canvas_px: float, font_size: float, *, bar: bool = True) -> str:
    """``title`` wrapped at spaces into lines that end left of the colour bar (``bar``; else the canvas's
    right edge; a word longer than a line is cut), so a long title never runs under it."""
    free = canvas_px - (COLORBAR_PX if bar else 0) - 16
    per_line = max(8, int(free / (CHAR_PX_PER_PT * font_size)))
    lines = [textwrap.wrap(part, per_line, break_on_hyphens=False) or [""] for part in title.split("\n")]
    return "\n".join(line for part in lines for line in part)


def set_title(viewer, title: str, canvas_px: float | None = None, *, bar: bool = True) -> None:
    """Write ``title`` on the canvas (text overlay, top left), wrapped to end left of the colour bar (``bar``:
    one is shown; else the canvas edge); :func:`refit_title` wraps it again when the canvas is resized."""
    text = viewer.canvas.overlays.text
    width = canvas_px if canvas_px is not None else float(viewer.canvas.size[-1])
    text.position = "top_left"  # the colour bar takes the top right
    text.text = fitted_title(title, width, text.font_size, bar=bar)
    text.visible = True
    _TITLES[id(text)] = (title, text.text, bar)


def refit_title(viewer, canvas_px: float) -> None:
    """Wrap the title written by :func:`set_title` again for a canvas ``canvas_px`` wide (unless the text
    overlay was given another text since)."""
    text = viewer.canvas.overlays.text
    title, shown, bar = _TITLES.get(id(text), (None, None, True))
    if title is not None and text.text == shown:
        set_title(viewer, title, canvas_px, bar=bar)


#: The text overlay's whole title, the wrapped text shown and whether a colour bar is beside it, by its id.
_TITLES: dict[int, tuple[str, str, bool]] = {}


def show_gene(viewer, layer, gene: str, colormap: str, limits: tuple[float, float], title: str) -> None:
    """Name ``gene`` on the canvas (text overlay, top left), its colour bar, and the scale bar."""
    show_colorbar(layer, colormap, limits)
    viewer.canvas.overlays.text.font_size = 12
    set_title(viewer, title)
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
