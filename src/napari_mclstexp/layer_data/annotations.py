"""Annotation classes ↔ napari Shapes layers (one layer per class), without Qt.

A class becomes one Shapes layer of polygons in full-resolution px ``(row, col)`` with the slide's µm
``scale``, named after the class, edged in its colour.  napari polygons have no holes, so a hole is its own
polygon (no fill) and the ``features`` columns ``region`` (which polygon it belongs to) and ``hole`` keep
the structure for the way back.  Shapes drawn later (``region`` −1) are each a region of their own;
rectangles and ellipses are polygons too, lines and paths are not regions.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..coords import rowcol_to_xy, xy_to_rowcol
from ..io.annotations import AnnotationClass, Annotations, Region
from .base import KEY, world_scale, world_units

ROLE = "annotation"
#: Fill opacity of an annotation's polygons (holes are not filled).
FILL_ALPHA = 0.15
#: Vertices of an ellipse drawn in napari when it becomes a polygon.
ELLIPSE_VERTICES = 64


def annotation_layers(annotations: Annotations | Iterable[AnnotationClass], mpp: float | None) -> list[tuple]:
    """One Shapes layer tuple per class.

    Parameters
    ----------
    annotations
        Classes read by :func:`napari_mclstexp.io.annotations.read_annotations` (px ``(x, y)``).
    mpp
        µm per full-resolution px of the slide (the layers' ``scale``), ``None`` for px.
    """
    classes = annotations.classes if isinstance(annotations, Annotations) else list(annotations)
    layers = []
    for cls in classes:
        data, region, hole, names = [], [], [], []
        for i, reg in enumerate(cls.regions):
            for ring, is_hole in [(reg.exterior, False)] + [(h, True) for h in reg.holes]:
                data.append(xy_to_rowcol(ring))
                region.append(i)
                hole.append(is_hole)
                names.append(reg.name or "")
        rgb = np.asarray(cls.color, dtype=float) / 255.0
        fill = np.array([[*rgb, 0.0] if h else [*rgb, FILL_ALPHA] for h in hole]).reshape(-1, 4)
        extent = float(np.ptp(np.vstack(data), axis=0).max()) if data else 1.0
        kwargs = {
            "name": cls.name,
            "shape_type": "polygon",
            "edge_color": [*rgb, 1.0],
            "face_color": fill,
            "edge_width": max(extent / 300.0, 1.0),
            "features": {"region": np.asarray(region, int), "hole": np.asarray(hole, bool), "name": names},
            "feature_defaults": {"region": -1, "hole": False, "name": ""},
            "scale": world_scale(mpp),
            "units": world_units(mpp),
            "metadata": {KEY: {"role": ROLE, "class": cls.name, "color": list(cls.color), "mpp": mpp}},
        }
        layers.append((data, kwargs, "shapes"))
    return layers


def layers_mpp(layers: Iterable) -> float | None:
    """µm per px of the slide/spots among ``layers`` (the first of our layers that records it), else ``None``."""
    for layer in layers:
        meta = layer.metadata.get(KEY, {}) if isinstance(getattr(layer, "metadata", None), dict) else {}
        if meta.get("mpp"):
            return float(meta["mpp"])
    return None


def _ellipse(corners: np.ndarray) -> np.ndarray:
    """napari's ellipse (the 4 corners of its bounding box) → a polygon."""
    centre = corners.mean(axis=0)
    a, b = (corners[1] - corners[0]) / 2.0, (corners[3] - corners[0]) / 2.0
    t = np.linspace(0.0, 2 * np.pi, ELLIPSE_VERTICES, endpoint=False)[:, None]
    return centre + np.cos(t) * a + np.sin(t) * b


def shapes_in_px(layer, mpp: float | None = None) -> list[tuple[int, np.ndarray]]:
    """``(index, (V, 2) px (x, y))`` of a Shapes layer's area shapes (polygon, rectangle, ellipse).

    Vertices go through the layer's world transform (``scale``, ``translate``) and back to px by ``mpp``
    (the layer's recorded one, else ``mpp``, else 1: a layer in px).
    """
    meta = layer.metadata.get(KEY, {}) if isinstance(layer.metadata, dict) else {}
    mpp = meta.get("mpp") or mpp or 1.0
    scale, translate = np.asarray(layer.scale)[-2:], np.asarray(layer.translate)[-2:]
    out = []
    for i, (kind, vertices) in enumerate(zip(layer.shape_type, layer.data, strict=True)):
        if kind not in ("polygon", "rectangle", "ellipse"):
            continue
        rc = np.asarray(vertices, dtype=float)[:, -2:]
        rc = _ellipse(rc) if kind == "ellipse" else rc
        out.append((i, rowcol_to_xy((rc * scale + translate) / mpp)))
    return out


def _layer_color(layer, meta: dict) -> tuple[int, int, int]:
    if "color" in meta:
        return tuple(int(c) for c in meta["color"][:3])
    edges = np.asarray(layer.edge_color)
    rgb = edges[0, :3] if edges.ndim == 2 and len(edges) else np.array([1.0, 1.0, 0.0])
    return tuple(int(round(c * 255)) for c in rgb)


def layer_annotation_class(layer, mpp: float | None = None) -> AnnotationClass | None:
    """The annotation class a Shapes layer holds (every area shape kept), or ``None`` when it has none."""
    meta = layer.metadata.get(KEY, {}) if isinstance(layer.metadata, dict) else {}
    features = layer.features
    region_ids = features["region"].to_numpy() if "region" in features else np.full(len(layer.data), -1)
    holes = features["hole"].to_numpy(dtype=bool) if "hole" in features else np.zeros(len(layer.data), bool)
    names = features["name"].astype(str).to_numpy() if "name" in features else np.full(len(layer.data), "")
    regions: dict = {}
    for i, xy in shapes_in_px(layer, mpp):
        if len(xy) < 3:
            continue
        key = ("imported", int(region_ids[i])) if region_ids[i] >= 0 else ("drawn", i)
        if holes[i] and key in regions:
            regions[key].holes.append(xy)
        elif not holes[i]:
            regions[key] = Region(xy, [], names[i] or None)
    if not regions:
        return None
    return AnnotationClass(str(meta.get("class") or layer.name), _layer_color(layer, meta), list(regions.values()))


def layers_to_annotations(layers: Iterable, mpp: float | None = None) -> Annotations:
    """Every Shapes layer given → its class (layers without area shapes are left out)."""
    classes = [c for c in (layer_annotation_class(layer, mpp) for layer in layers) if c is not None]
    return Annotations(classes)
