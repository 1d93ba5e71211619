"""Colours on live Points layers: one gene's values as face colours and hover features.

Switching the coloured gene on 100k spots must stay well under 100 ms of our own work, so the
expression matrix stays in the engine, only the current gene goes into ``layer.features`` (for the
value on hover), and colours are set as one RGBA array inside ``layer.events.face_color.blocker()``.
The value → colour mapping itself is :mod:`napari_mclstexp.layer_data.colors`.
"""

from __future__ import annotations

import time

import numpy as np

from ..layer_data.colors import NAN_RGBA, auto_limits, colormap_lut, gradient_image, values_to_rgba

__all__ = ["NAN_RGBA", "auto_limits", "colormap_lut", "gradient_image", "set_points_values", "values_to_rgba"]


def set_points_values(
    layer, values: np.ndarray, colormap: str, limits: tuple[float, float], *, column: str = "value"
) -> float:
    """Show ``values`` on a Points layer: ``features[column]`` for hover, RGBA face colours.

    The features column is updated in place (no table copy) and the colour event is blocked so the
    canvas redraws once, from the colour manager's own event.

    Returns
    -------
    float
        Seconds spent inside napari's ``face_color`` setter (its colour validation and the vispy
        buffer update), i.e. not our own work.
    """
    values = np.asarray(values, dtype=np.float32)
    features = layer.features
    if len(features) == len(values):
        features[column] = values
    else:
        layer.features = {column: values}
    rgba = values_to_rgba(values, colormap, limits)
    t0 = time.perf_counter()
    with layer.events.face_color.blocker():
        layer.face_color = rgba
    return time.perf_counter() - t0
