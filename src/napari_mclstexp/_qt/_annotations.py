"""Annotations in the viewer: QuPath GeoJSON in (one Shapes layer per class), every shape back out."""

from __future__ import annotations

from pathlib import Path

from napari.layers import Shapes
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..layer_data import KEY, role
from ..layer_data.annotations import ROLE, annotation_layers, layers_mpp, layers_to_annotations
from ._common import PathEdit, add_layer_tuples, button
from ._worker import run_guarded


def slide_mpp(viewer) -> float | None:
    """µm per px of the slide/spots already in the viewer (the first of our layers that records it)."""
    return layers_mpp(viewer.layers)


def region_shapes_layers(viewer) -> list[Shapes]:
    """Shapes layers holding regions: imported annotation classes and any the user drew (every one)."""
    return [layer for layer in viewer.layers if isinstance(layer, Shapes) and role(layer) in (None, ROLE, "region")]


def add_annotations(viewer, path: str | Path) -> list:
    """Read a GeoJSON and add one Shapes layer per class (slide px, the slide's µm scale); returns the
    layers (``[]`` after an error, which the user sees as a notification)."""
    from ..io.annotations import read_annotations

    annotations = run_guarded(lambda: read_annotations(path))
    if annotations is None:
        return []
    layers = add_layer_tuples(viewer, annotation_layers(annotations, slide_mpp(viewer)))
    for layer in layers:
        layer.metadata[KEY]["summary"] = annotations.summary()
    return layers


def save_annotations(viewer, path: str | Path) -> Path | None:
    """Write every region Shapes layer as a QuPath GeoJSON class (atomic); returns the path or ``None``."""
    from ..io.annotations import write_annotations

    annotations = layers_to_annotations(region_shapes_layers(viewer), slide_mpp(viewer))
    if not annotations.classes:
        show_error("No shapes to save: import annotations or draw a region first.")
        return None
    return run_guarded(lambda: write_annotations(annotations, path))


class AnnotationsRow(QWidget):
    """A GeoJSON file field, Add annotations and Save annotations buttons, and what was read."""

    def __init__(self, viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.path = PathEdit("QuPath GeoJSON annotations", filter="GeoJSON (*.geojson *.json)")
        self.info = QLabel("")
        self.info.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(button("Add annotations", self.add))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.info)

    def add(self, path: str | None = None) -> list:
        """Import ``path`` (default: the field); returns the added layers."""
        path = path or self.path.text()
        if not path:
            show_error("Choose a GeoJSON file of annotations.")
            return []
        layers = add_annotations(self.viewer, path)
        if layers:
            self.info.setText(layers[0].metadata[KEY]["summary"])
        return layers
