"""The tissue mask as an editable napari Labels layer over its slide (label 1 = tissue, outlined).

Whole-slide prediction detects tissue on the slide's thumbnail (``predict.tissue``); the mask is shown
before any tile is predicted, the user paints or erases it with napari's label tools, and the next
prediction reads the layer as it is (``tissue=(mask, scale)`` of ``predict_whole_slide``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..layer_data import KEY, layers_with_role

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


def tissue_layer_for(viewer, slide_layer):
    """The tissue Labels layer of ``slide_layer`` (same slide file), or ``None``."""
    path = Path(slide_layer.metadata[KEY]["slide_path"])
    for layer in reversed(layers_with_role(viewer, "tissue")):
        if Path(layer.metadata[KEY]["slide_path"]) == path:
            return layer
    return None


def add_tissue_layer(viewer, slide_layer, mask: np.ndarray, scale: float):
    """Add (or replace) the tissue layer of ``slide_layer``: ``mask`` (bool, ``scale`` mask px per
    full-res px) as label 1, outlined, aligned with the slide (µm world units when known)."""
    old = tissue_layer_for(viewer, slide_layer)
    if old is not None:
        viewer.layers.remove(old)
    meta = slide_layer.metadata[KEY]
    px = np.asarray(slide_layer.scale[-2:], float) / float(scale)
    name = f"{slide_layer.name.removesuffix(' slide')} tissue"
    layer = viewer.add_labels(
        np.asarray(mask, np.uint8),
        name=name,
        scale=px,
        units=slide_layer.units[-2:],
        opacity=0.8,
        metadata={
            KEY: {"role": "tissue", "slide_path": meta["slide_path"], "scale": float(scale), "mpp": meta.get("mpp")}
        },
    )
    layer.colormap = tissue_colormap()
    layer.contour = CONTOUR
    layer.selected_label = 1
    layer.brush_size = 20
    return layer


def layer_mask(layer) -> tuple[np.ndarray, float]:
    """``(mask, scale)`` of a tissue layer as the user left it (painted label > 0 = tissue)."""
    return np.asarray(layer.data) > 0, float(layer.metadata[KEY]["scale"])
