"""Region review panel: draw a region (Shapes), rank genes inside vs outside, save the table as CSV."""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QHBoxLayout, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from ._common import PathEdit, button
from ._worker import run_guarded

COLUMNS = ("gene", "mean_inside", "mean_outside", "difference", "fold_change", "n_inside")


class RegionPanel(QWidget):
    """Ranks genes of the Explore widget's current predictions inside the drawn region."""

    def __init__(self, viewer, get_target, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer, self.get_target = viewer, get_target
        self.table_widget = QTableWidget(0, len(COLUMNS))
        self.table_widget.setHorizontalHeaderLabels(list(COLUMNS))
        self.table_widget.setMinimumHeight(140)
        self.summary = QLabel("Draw a region, then press Rank genes.")
        self.csv_path = PathEdit("region_genes.csv", mode="save", filter="CSV (*.csv)")
        row = QHBoxLayout()
        row.addWidget(button("Draw region", self.draw_region))
        row.addWidget(button("Rank genes", self.rank))
        save = QHBoxLayout()
        save.addWidget(self.csv_path, 1)
        save.addWidget(button("Save CSV", self.save_csv))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.summary)
        layout.addWidget(self.table_widget)
        layout.addLayout(save)
        self.table = None

    def region_layer(self):
        """The Shapes layer named ``region`` (created on demand, in the spots' world scale)."""
        if "region" in self.viewer.layers:
            return self.viewer.layers["region"]
        target = self.get_target()
        scale = target.scale if target is not None else (1.0, 1.0)
        units = target.units if target is not None else None
        return self.viewer.add_shapes(
            name="region",
            scale=scale,
            units=units,
            edge_color="yellow",
            face_color=[1, 1, 0, 0.15],
            edge_width=2 * float(scale[0]),
        )

    def draw_region(self) -> None:
        """Select the region layer in polygon mode."""
        layer = self.region_layer()
        self.viewer.layers.selection.active = layer
        layer.mode = "add_polygon"

    def rank(self):
        """Rank genes for the current target layer and the drawn shapes; returns the table."""
        from ..analysis.regions import rank_genes_in_region, spots_in_polygons
        from ..layer_data import layer_adata

        target = self.get_target()
        if target is None or layer_adata(target) is None:
            show_error("Choose predictions in Explore first.")
            return None
        if "region" not in self.viewer.layers or not len(self.viewer.layers["region"].data):
            show_error("Draw a region first (Draw region).")
            return None
        shapes = self.viewer.layers["region"]
        adata = layer_adata(target)
        # shapes vertices are in their own data coordinates; map to the spots' pixel frame
        polygons = [_to_layer(shapes, target, np.asarray(v)) for v in shapes.data]
        inside = spots_in_polygons(np.asarray(adata.obsm["spatial"], float), polygons)
        table = run_guarded(lambda: rank_genes_in_region(adata.X, list(adata.var_names), inside))
        if table is None:
            return None
        self.table = table
        text = f"{int(inside.sum())} spots inside, {int((~inside).sum())} outside"
        if "novelty" in adata.obs and inside.any():  # how unlike the training data the region is (0–1)
            nov = adata.obs["novelty"].to_numpy(float)
            outside = f", outside {nov[~inside].mean():.2f}" if (~inside).any() else ""
            text += f"; mean novelty inside {nov[inside].mean():.2f}{outside}"
        self.summary.setText(text)
        self._show(table)
        return table

    def _show(self, table) -> None:
        top = table.head(50)
        self.table_widget.setRowCount(len(top))
        for r, (_, rec) in enumerate(top.iterrows()):
            for c, col in enumerate(COLUMNS):
                value = rec[col]
                text = f"{value:.4g}" if isinstance(value, float) else str(value)
                self.table_widget.setItem(r, c, QTableWidgetItem(text))

    def save_csv(self, path: str | None = None):
        """Save the last ranking as CSV; returns the path or ``None``."""
        from ..io.export import table_to_csv

        path = path or self.csv_path.text()
        if self.table is None:
            show_error("Rank genes first.")
            return None
        if not path:
            show_error("Choose a CSV file name.")
            return None
        return run_guarded(lambda: table_to_csv(self.table, path))


def _to_layer(source, target, vertices: np.ndarray) -> np.ndarray:
    """Vertices of ``source`` layer data → ``target`` layer data coordinates (via world)."""
    world = vertices * np.asarray(source.scale) + np.asarray(source.translate)
    meta = target.metadata.get("mclstexp", {}) if isinstance(target.metadata, dict) else {}
    if "raster" in meta:  # a binned raster's data are bins, not pixels: world µm → full-res px
        return world / float(meta.get("mpp") or 1.0)
    return (world - np.asarray(target.translate)) / np.asarray(target.scale)
