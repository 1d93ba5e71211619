"""The tissue mask as an editable napari Labels layer over its slide (label 1 = tissue, outlined).

Whole-slide prediction detects tissue on the slide's thumbnail (``predict.tissue``); the mask is shown
before any tile is predicted, the user paints or erases it with napari's label tools, and the next
prediction reads the layer as it is (``tissue=(mask, scale)`` of ``predict_whole_slide``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..layer_data import KEY, layers_with_role, section_of

#: Outline width (mask px) of the tissue layer: the slide stays readable under it.
CONTOUR = 2
#: Outline colour (RGBA): cyan reads on pink/purple H&E and on viridis/magma overlays.
OUTLINE = (0.0, 0.9, 1.0, 1.0)


def tissue_colormap():
    """Label 1 outlined in :data:`OUTLINE`, the rest transparent."""
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0), 1: OUTLINE})


def warm_tissue_colormap() -> None:
    """Compile napari's label-colour kernels (numba, ≈ 1–5 s once per process) where this runs — a
    worker — rather than in the GUI thread on the first tissue layer (measured: a 5 s freeze at the
    start of a whole-slide prediction on the shared 2-core machine)."""
    try:
        tissue_colormap()._get_mapping_from_cache(np.dtype(np.uint8))
    except Exception:  # noqa: BLE001 - only a head start (napari's private cache may move); it compiles later
        pass
    warm_dash_patterns()


def warm_dash_patterns() -> None:
    """Build vispy's dash patterns (13 patterns × 1,024 samples, ≈ 0.6 s once per process) where this
    runs — a worker.  Every Labels layer gets a polygon-drawing overlay whose antialiased outline
    builds a ``DashAtlas``; vispy caches the patterns, so the first Labels layer (the tissue mask)
    otherwise pays for them in the GUI thread (measured: 0.6 s of a 1.0 s stall)."""
    try:
        from vispy.visuals.line.dash_atlas import DashAtlas

        DashAtlas()
    except Exception:  # noqa: BLE001 - only a head start; vispy builds them itself otherwise
        pass


def tissue_layer_for(viewer, slide_layer):
    """The tissue Labels layer of ``slide_layer`` (same slide file), or ``None``."""
    path = Path(slide_layer.metadata[KEY]["slide_path"])
    for layer in reversed(layers_with_role(viewer, "tissue")):
        if Path(layer.metadata[KEY]["slide_path"]) == path:
            return layer
    return None


def add_tissue_layer(viewer, slide_layer, mask: np.ndarray, scale: float, *, visible: bool = True, select: bool = True):
    """Add (or replace) the tissue layer of ``slide_layer``: ``mask`` (bool, ``scale`` mask px per
    full-res px) as label 1, outlined, aligned with the slide (µm world units when known).

    A tissue layer of the slide already in the viewer takes the new mask in place (its place in the list, opacity
    and visibility stay; removing a Labels layer and adding another cost the GUI thread ~0.2 s, measured).
    A new layer is complete (colours, outline, brush) before it goes in: each change after that would
    redraw it.  ``visible=False`` leaves its drawing (slicing, outline, texture) to the caller's next
    step of the event loop: the adding itself costs napari ~0.2 s of GUI time; ``select=False`` leaves the
    selection (napari selects what it adds: ~0.05 s more) to that step too.  Its painting overlays (polygon and
    brush outline, ~0.08 s of vispy visuals) go in with the steps of :func:`painting_tool_steps`.
    """
    from napari.layers import Labels

    meta = slide_layer.metadata[KEY]
    px = np.asarray(slide_layer.scale[-2:], float) / float(scale)
    about = {KEY: {"role": "tissue", "slide_path": meta["slide_path"], "scale": float(scale), "mpp": meta.get("mpp")}}
    old = tissue_layer_for(viewer, slide_layer)
    if old is not None:
        old.metadata = {**old.metadata, **about}
        old.scale = px
        old.data = np.asarray(mask, np.uint8)
        return old
    layer = Labels(
        np.asarray(mask, np.uint8),
        name=f"{section_of(slide_layer.name)} tissue",
        scale=px,
        units=slide_layer.units[-2:],
        opacity=0.8,
        colormap=tissue_colormap(),
        visible=visible,
        metadata=about,
    )
    layer.contour = CONTOUR
    layer.selected_label = 1
    layer.brush_size = 20
    for overlay in _painting_overlays(layer):
        overlay.visible = False  # napari builds an overlay's visuals when it first shows
    if not select:
        from ._gui_steps import insert_quietly

        return insert_quietly(viewer, layer)
    viewer.add_layer(layer)
    for step in painting_tool_steps(layer):
        step()
    return layer


#: The Labels overlays napari draws only while painting (polygon tool, brush outline).
PAINTING_OVERLAYS = ("polygon", "brush_stroke")


def _painting_overlays(layer) -> list:
    overlays = getattr(layer, "_overlays", {})  # napari's private dict: without it, nothing is deferred
    return [overlays[name] for name in PAINTING_OVERLAYS if name in overlays]


def painting_tool_steps(layer) -> list:
    """Steps (for a :class:`~._gui_steps.GuiSteps` queue) that let napari build the tissue layer's painting
    overlays, one each (≈ 25–55 ms of GUI time each): until then the layer cannot be painted with a visible brush
    outline or polygon."""
    return [lambda o=o: setattr(o, "visible", True) for o in _painting_overlays(layer)]


def layer_mask(layer) -> tuple[np.ndarray, float]:
    """``(mask, scale)`` of a tissue layer as the user left it (painted label > 0 = tissue)."""
    return np.asarray(layer.data) > 0, float(layer.metadata[KEY]["scale"])
