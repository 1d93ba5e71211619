"""Export widget: predictions (at spots or whole-slide tiles) to ``.h5ad``/CSV, spots, tiles and
domains to QuPath GeoJSON, a screenshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from napari.layers import Points
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QWidget

from ..atomic import atomic_write_path
from ..layer_data import layer_adata, layers_with_role
from ._common import LayerCombo, PathEdit, button, scroll_layout
from ._worker import run_guarded


class ExportWidget(QWidget):
    """Write the chosen spots/predictions layer (with its domains) in the format the suffix names."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.layer = LayerCombo(napari_viewer, ["predicted", "dense", "domains", "domain_map", "spots"])
        self.folder = PathEdit("output folder", mode="folder")
        self.stem = PathEdit("file name without suffix (default: layer name)")
        form = QFormLayout()
        form.addRow("Layer", self.layer)
        form.addRow("Folder", self.folder)
        form.addRow("Name", self.stem)
        row = QHBoxLayout()
        row.addWidget(button(".h5ad", lambda: self.export(".h5ad")))
        row.addWidget(button("CSV", lambda: self.export(".csv")))
        row.addWidget(button("QuPath GeoJSON", lambda: self.export(".geojson")))
        self.info = QLabel("")
        self.info.setWordWrap(True)
        layout = scroll_layout(self)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(button("Screenshot", lambda: self.screenshot()))
        layout.addWidget(button("Annotations (every shape, QuPath GeoJSON)", lambda: self.annotations()))
        layout.addWidget(self.info)
        layout.addStretch(1)

    def _path(self, suffix: str) -> Path | None:
        layer = self.layer.layer()
        folder = self.folder.text()
        if not folder:
            show_error("Choose an output folder.")
            return None
        stem = self.stem.text() or (layer.name if layer is not None else "mclstexp")
        return Path(folder) / f"{stem.replace('/', '_')}{suffix}"

    def layer_meta(self, layer) -> dict:
        """What a writer needs: metadata, features (with domains of the same spots), size, scale.

        Whole-slide predictions (an Image layer) are written from their AnnData: one row per tile.
        """
        if not isinstance(layer, Points):
            return {"metadata": layer.metadata, "scale": np.asarray(layer.scale)}
        features = layer.features.copy()
        adata = layer_adata(layer)
        if "domain" not in features:
            for other in layers_with_role(self.viewer, "domains"):
                if layer_adata(other) is adata and "domain" in other.features:
                    features["domain"] = other.features["domain"].to_numpy()
        return {
            "metadata": layer.metadata,
            "features": pd.DataFrame(features),
            "size": np.asarray(layer.size),
            "scale": np.asarray(layer.scale),
        }

    def export(self, suffix: str, path: str | None = None) -> Path | None:
        """Write the chosen layer as ``suffix`` (``.h5ad``, ``.csv``, ``.geojson``); returns the path."""
        from .. import _writer

        layer = self.layer.layer()
        if layer is None:
            show_error("Nothing to export: load or predict spots first.")
            return None
        out = Path(path) if path else self._path(suffix)
        if out is None:
            return None
        write = {".h5ad": _writer.write_h5ad, ".csv": _writer.write_csv, ".geojson": _writer.write_geojson}[suffix]
        data = layer.data if isinstance(layer, Points) else np.zeros((layer_adata(layer).n_obs, 2))
        done = run_guarded(lambda: write(str(out), data, self.layer_meta(layer)))
        if done is None:
            return None
        self.info.setText(f"saved {out}")
        return out

    def annotations(self, path: str | None = None) -> Path | None:
        """Write every region Shapes layer (imported classes, drawn regions) as QuPath annotations."""
        from ._annotations import save_annotations

        out = Path(path) if path else self._path(".annotations.geojson")
        done = save_annotations(self.viewer, out) if out is not None else None
        if done is not None:
            self.info.setText(f"saved {out}")
        return done

    def screenshot(self, path: str | None = None, *, canvas_only: bool = False) -> Path | None:
        """Save a PNG of the viewer (window with docks unless ``canvas_only``); returns the path."""
        out = Path(path) if path else self._path(".png")
        if out is None:
            return None

        def save() -> Path:
            image = self.viewer.screenshot(canvas_only=canvas_only, flash=False)
            from PIL import Image

            with atomic_write_path(out) as tmp:
                Image.fromarray(np.asarray(image)).save(tmp, format="PNG")
            return out

        done = run_guarded(save)
        if done is not None:
            self.info.setText(f"saved {out}")
        return done
