"""Annotations in and out: QuPath GeoJSON (and what our own export writes) ↔ classes of polygons.

An *annotation* is a polygon a person drew (tumour, stroma, immune infiltrate), with a classification
(name and colour).  QuPath writes a GeoJSON ``FeatureCollection`` (or a bare ``Feature`` / list of
features) whose ``properties`` carry ``objectType`` (``"annotation"``, ``"detection"``, ``"cell"``,
``"tile"``; QuPath 0.1 put ``PathAnnotationObject`` … in the feature ``id``) and ``classification``
(``{"name", "color"}``, the colour as ``[r, g, b]`` or as one packed (A)RGB integer, older files
``colorRGB``).  Detections, cells and tiles (thousands of spot or cell polygons) are objects an algorithm
made, not regions a person drew: they are skipped and counted.  Coordinates are full-resolution image
pixels ``(x, y)``, the frame of ``obsm['spatial']``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from skimage.measure import points_in_poly

from ..atomic import atomic_write_path
from ..errors import InputError, OutputError

#: ``objectType`` values (and QuPath 0.1 feature ids) that are not drawn regions.
SKIPPED_TYPES = frozenset({"detection", "cell", "tile", "pathdetectionobject", "pathcellobject", "pathtileobject"})
#: Class name of annotations without a classification.
UNCLASSIFIED = "Unclassified"
#: Colour of unclassified annotations (QuPath's default annotation colour is red).
DEFAULT_COLOR = (255, 0, 0)


@dataclass
class Region:
    """One polygon: an outer ring and its holes, ``(V, 2)`` float arrays of full-res px ``(x, y)``
    without the repeated closing vertex."""

    exterior: np.ndarray
    holes: list[np.ndarray] = field(default_factory=list)
    name: str | None = None

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: points ``(x, y)`` inside the outer ring and in none of the holes."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        inside = points_in_poly(xy, self.exterior)
        for hole in self.holes:
            inside &= ~points_in_poly(xy, hole)
        return inside


@dataclass
class AnnotationClass:
    """All regions of one classification."""

    name: str
    color: tuple[int, int, int]
    regions: list[Region] = field(default_factory=list)

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: points ``(x, y)`` inside any of the class's regions."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        inside = np.zeros(len(xy), dtype=bool)
        for region in self.regions:
            inside |= region.contains(xy)
        return inside


@dataclass
class Annotations:
    """What a GeoJSON file held: the classes in order of first appearance, and what was skipped."""

    classes: list[AnnotationClass]
    n_detections_skipped: int = 0
    n_other_skipped: int = 0
    path: Path | None = None

    def by_name(self) -> dict[str, AnnotationClass]:
        """Classes keyed by name."""
        return {c.name: c for c in self.classes}

    def summary(self) -> str:
        """One line: classes and regions read, objects skipped."""
        parts = [f"{c.name} ({len(c.regions)})" for c in self.classes]
        text = f"{len(self.classes)} annotation classes: {', '.join(parts) or 'none'}"
        if self.n_detections_skipped:
            text += f"; {self.n_detections_skipped} detections/cells skipped (not drawn annotations)"
        if self.n_other_skipped:
            text += f"; {self.n_other_skipped} features without an area (points, lines, empty) skipped"
        return text


def parse_color(value) -> tuple[int, int, int] | None:
    """QuPath colour → ``(r, g, b)``: a list ``[r, g, b(, a)]`` or a packed (A)RGB int (may be negative)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) and float(value) == int(value):
        v = int(value)
        return ((v >> 16) & 255, (v >> 8) & 255, v & 255)
    if isinstance(value, list | tuple) and len(value) in (3, 4):
        try:
            rgb = [int(round(float(c))) for c in value[:3]]
        except (TypeError, ValueError):
            return None
        if all(0 <= c <= 255 for c in rgb):
            return (rgb[0], rgb[1], rgb[2])
    return None


def _ring(coords, path: Path) -> np.ndarray:
    try:
        ring = np.asarray(coords, dtype=float)
    except (TypeError, ValueError) as err:
        raise InputError(f"polygon ring is not a list of [x, y] numbers ({err})", path) from None
    if ring.ndim != 2 or ring.shape[1] < 2 or not np.isfinite(ring[:, :2]).all():
        raise InputError(f"polygon ring must be a list of finite [x, y] pairs, got shape {ring.shape}", path)
    ring = ring[:, :2]
    if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
        ring = ring[:-1]
    return ring


def _polygons(geometry, path: Path) -> list[Region]:
    """Regions of a GeoJSON geometry (Polygon, MultiPolygon, GeometryCollection); ``[]`` for no area."""
    if not isinstance(geometry, dict):
        return []
    kind = geometry.get("type")
    if kind == "GeometryCollection":
        return [r for g in geometry.get("geometries") or [] for r in _polygons(g, path)]
    if kind not in ("Polygon", "MultiPolygon"):
        return []
    coords = geometry.get("coordinates")
    if not isinstance(coords, list):
        raise InputError(f"{kind} without a coordinates list", path)
    polygons = [coords] if kind == "Polygon" else coords
    regions = []
    for rings in polygons:
        if not isinstance(rings, list) or not rings:
            continue
        outer = _ring(rings[0], path)
        if len(outer) < 3:
            continue
        holes = [h for h in (_ring(r, path) for r in rings[1:]) if len(h) >= 3]
        regions.append(Region(outer, holes))
    return regions


def _features(doc, path: Path) -> list:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise InputError("FeatureCollection without a 'features' list", path)
        return features
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        return [doc]
    if isinstance(doc, dict) and doc.get("type") in ("Polygon", "MultiPolygon", "GeometryCollection"):
        return [{"type": "Feature", "geometry": doc, "properties": {}}]
    raise InputError("not GeoJSON: expected a FeatureCollection, a Feature or a list of features", path)


def read_annotations(path: str | os.PathLike) -> Annotations:
    """Read the annotations of a QuPath (or any) GeoJSON file.

    Parameters
    ----------
    path
        ``.geojson`` / ``.json`` file; coordinates in full-resolution image px ``(x, y)``.

    Returns
    -------
    Annotations
        Classes (name, colour, regions) in order of first appearance; detections/cells/tiles skipped
        and counted in ``n_detections_skipped``, features without an area in ``n_other_skipped``.

    Raises
    ------
    InputError
        Naming the file: missing, not JSON, not GeoJSON, malformed polygons, or no annotation at all.
    """
    path = Path(path)
    if not path.is_file():
        from ..errors import MissingInputError

        raise MissingInputError("annotation file not found", path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"not valid JSON ({err})", path) from None
    classes: dict[str, AnnotationClass] = {}
    detections = other = 0
    for feature in _features(doc, path):
        if not isinstance(feature, dict):
            raise InputError("a feature is not a JSON object", path)
        props = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        kind = str(props.get("objectType") or feature.get("id") or "").lower()
        if kind in SKIPPED_TYPES or props.get("isCellObject"):
            detections += 1
            continue
        regions = _polygons(feature.get("geometry"), path)
        if not regions:
            other += 1
            continue
        cls = props.get("classification") if isinstance(props.get("classification"), dict) else {}
        name = str(cls.get("name") or UNCLASSIFIED)
        color = parse_color(cls.get("color")) or parse_color(cls.get("colorRGB")) or parse_color(props.get("color"))
        if name not in classes:
            classes[name] = AnnotationClass(name, color or DEFAULT_COLOR)
        label = props.get("name")
        for region in regions:
            region.name = str(label) if label is not None else None
        classes[name].regions.extend(regions)
    if not classes:
        what = f" ({detections} detections/cells skipped: annotations are the polygons a person drew)"
        raise InputError(f"no annotation polygons in the file{what if detections else ''}", path)
    return Annotations(list(classes.values()), detections, other, path)


def _closed(ring: np.ndarray) -> list[list[float]]:
    ring = np.asarray(ring, dtype=float)
    return np.round(np.vstack([ring, ring[:1]]), 3).tolist()


def annotations_to_geojson(classes: Iterable[AnnotationClass]) -> dict:
    """A QuPath-readable ``FeatureCollection``: one ``annotation`` Polygon feature per region."""
    features = []
    for cls in classes:
        color = [int(c) for c in cls.color]
        for region in cls.regions:
            props: dict = {"objectType": "annotation", "classification": {"name": cls.name, "color": color}}
            if region.name:
                props["name"] = region.name
            rings = [_closed(region.exterior)] + [_closed(h) for h in region.holes]
            features.append(
                {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": rings}, "properties": props}
            )
    return {"type": "FeatureCollection", "features": features}


def write_annotations(classes: Sequence[AnnotationClass] | Annotations, path: str | os.PathLike) -> Path:
    """Write annotation classes as QuPath GeoJSON (atomic); returns the path.

    Vertices are full-resolution px ``(x, y)`` rounded to 0.001 px, rings closed as GeoJSON requires.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError("is a folder, not a file name", path)
    items = classes.classes if isinstance(classes, Annotations) else list(classes)
    text = json.dumps(annotations_to_geojson(items), separators=(",", ":"))
    with atomic_write_path(path) as tmp:
        tmp.write_text(text)
    return path
