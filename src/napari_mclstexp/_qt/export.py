"""Export widget: predictions (at spots or whole-slide tiles) to ``.h5ad``/CSV, spots, tiles and
domains to QuPath GeoJSON, a screenshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from napari.layers import Points
from qtpy.QtWidgets import QCheckBox, QFormLayout, QHBoxLayout, QLabel, QWidget

from ..atomic import atomic_write_path
from ..layer_data import KEY, layer_adata, layers_with_role, role
from . import _collector
from ._common import LayerCombo, PathEdit, button, scroll_layout
from ._toasts import notify
from ._worker import run_guarded


class ExportWidget(QWidget):
    """Write the chosen spots/predictions layer (with its domains) in the format the suffix names."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        _collector.watch(self, napari_viewer)
        self.viewer = napari_viewer
        self.layer = LayerCombo(napari_viewer, ["predicted", "dense", "domains", "domain_map", "spots"])
        self.folder = PathEdit("output folder", mode="folder")
        self.stem = PathEdit("file name without suffix (default: layer name)")
        form = QFormLayout()
        form.addRow("Layer", self.layer)
        form.addRow("Folder", self.folder)
        form.addRow("Name", self.stem)
        self.all_genes = QCheckBox("every measured gene (default: the model's genes)")
        self.all_genes.setToolTip(
            "Measured spots hold every gene of the sample (tens of MB as GeoJSON); by default only the genes "
            "of the predictions beside them are written"
        )
        form.addRow("Genes", self.all_genes)
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
            notify("error", "Choose an output folder (Folder field) first.")
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
            "metadata": self._panel_only(layer),
            "features": pd.DataFrame(features),
            "size": np.asarray(layer.size),
            "scale": np.asarray(layer.scale),
        }

    def panel_genes(self, layer) -> list[str] | None:
        """The genes of the predictions made at ``layer``'s spots (else of the newest predictions), or
        ``None`` when there are none."""
        predicted = layers_with_role(self.viewer, "predicted") + layers_with_role(self.viewer, "dense")
        own = [p for p in predicted if p.metadata.get(KEY, {}).get("source") == layer.name]
        for candidate in reversed(own or predicted):
            adata = layer_adata(candidate)
            if adata is not None and adata.n_vars:
                return list(map(str, adata.var_names))
        return None

    def _panel_only(self, layer) -> dict:
        """``layer``'s metadata; for measured spots (unless every gene is asked) with an AnnData of the
        model's genes only."""
        adata = layer_adata(layer)
        panel = self.panel_genes(layer) if role(layer) == "spots" and not self.all_genes.isChecked() else None
        if adata is None or panel is None:
            return layer.metadata
        keep = [g for g in panel if g in adata.var_names]
        if not keep or len(keep) == adata.n_vars:
            return layer.metadata
        self._note = f" ({len(keep)} of {adata.n_vars} genes: the model's; tick every measured gene for all)"
        return {**layer.metadata, KEY: {**layer.metadata[KEY], "adata": adata[:, keep].copy()}}

    def export(self, suffix: str, path: str | None = None) -> Path | None:
        """Write the chosen layer as ``suffix`` (``.h5ad``, ``.csv``, ``.geojson``); returns the path."""
        from .. import _writer

        layer = self.layer.layer()
        if layer is None:
            notify("error", "Nothing to export: load or predict spots first.")
            return None
        out = Path(path) if path else self._path(suffix)
        if out is None:
            return None
        write = {".h5ad": _writer.write_h5ad, ".csv": _writer.write_csv, ".geojson": _writer.write_geojson}[suffix]
        data = layer.data if isinstance(layer, Points) else np.zeros((layer_adata(layer).n_obs, 2))
        self._note = ""
        done = run_guarded(lambda: write(str(out), data, self.layer_meta(layer)))
        if done is None:
            return None
        self._saved(out, self._note)
        return out

    def _saved(self, out: Path, note: str = "") -> None:
        """Say where the file went: in the dock and as a toast (the dock may be scrolled away)."""
        self.info.setText(f"saved {out}{note}")
        notify("info", f"saved {out.name} in {out.parent}{note}")

    def annotations(self, path: str | None = None) -> Path | None:
        """Write every region Shapes layer (imported classes, drawn regions) as QuPath annotations."""
        from ._annotations import save_annotations

        out = Path(path) if path else self._path(".annotations.geojson")
        done = save_annotations(self.viewer, out) if out is not None else None
        if done is not None:
            self._saved(done)
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
            self._saved(out)
        return done
