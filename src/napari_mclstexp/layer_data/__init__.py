"""napari layer data (``(data, kwargs, layer_type)`` tuples) of the engine's objects, without Qt.

napari's readers and sample data (``_reader.py``, ``_sample_data.py``) and the widgets (``_qt/``) all
build their layers here: :mod:`.base` (slides, spots, which layer holds which sample), :mod:`.colors`
(value → colour), :mod:`.predictions` (predicted spots, whole-slide tiles), :mod:`.raster` (binned
samples) and :mod:`.samples` (a sample → its layers).
"""

from __future__ import annotations

from .base import (
    KEY,
    existing_image,
    layer_adata,
    layers_with_role,
    preview_pyramid,
    role,
    section_of,
    slide_layer,
    slide_name,
    spots_layer,
    world_scale,
    world_units,
)
from .colors import auto_limits, values_to_rgba
from .predictions import dense_layer, predicted_spots_layer, prediction_layer
from .samples import data_layer, last_sample_visible, sample_layers

__all__ = [
    "KEY",
    "auto_limits",
    "data_layer",
    "dense_layer",
    "existing_image",
    "last_sample_visible",
    "layer_adata",
    "layers_with_role",
    "predicted_spots_layer",
    "prediction_layer",
    "preview_pyramid",
    "role",
    "sample_layers",
    "slide_layer",
    "section_of",
    "slide_name",
    "spots_layer",
    "values_to_rgba",
    "world_scale",
    "world_units",
]
