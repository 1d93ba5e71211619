"""Region review panel: every drawn or imported region (Shapes layers, one class each), per-class gene
statistics inside vs outside (:mod:`napari_mclstexp.analysis.region_stats`), the table saved as CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QHBoxLayout, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from ..layer_data import KEY
from ._common import PathEdit, button
from ._worker import run_guarded

COLUMNS = ("class", "gene", "difference", "log2_fold_change", "p_adjusted", "mean_inside", "mean_outside", "n_inside")
#: Rows shown per class (the CSV has every gene).
SHOWN_PER_CLASS = 15
#: Random placements per class for the p-values (the CLI's default).
PLACEMENTS = 200


def region_edge_width(target) -> float:
    """A region outline about 2 screen pixels wide when ``target`` fills a 600 px canvas, in the data
    units of a Shapes layer at ``target``'s scale (napari's edge width is in data units: a fixed number
    was 2 px on spots and a band hundreds of µm wide on whole-slide tiles, whose scale is a tile)."""
    if target is None:
        return 2.0
    extent = np.asarray(target.extent.data, float)[:, -2:]
    return float(max(np.max(extent[1] - extent[0]), 1e-9) / 300.0)


class RegionPanel(QWidget):
    """Ranks genes of the Explore widget's current predictions inside the drawn region."""

    def __init__(self, viewer, get_target, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer, self.get_target = viewer, get_target
        self.table_widget = QTableWidget(0, len(COLUMNS))
        self.table_widget.setHorizontalHeaderLabels(list(COLUMNS))
        self.table_widget.setMinimumHeight(140)
        self.summary = QLabel("Draw a region (or add annotations under Load), then press Rank genes.")
        self.summary.setWordWrap(True)
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
        meta = target.metadata.get(KEY, {}) if target is not None and isinstance(target.metadata, dict) else {}
        return self.viewer.add_shapes(
            name="region",
            scale=scale,
            units=units,
            metadata={KEY: {"role": "region", "mpp": meta.get("mpp")}},
            edge_color="yellow",
            face_color=[1, 1, 0, 0.15],
            edge_width=region_edge_width(target),
        )

    def draw_region(self) -> None:
        """Select the region layer in polygon mode."""
        layer = self.region_layer()
        self.viewer.layers.selection.active = layer
        layer.mode = "add_polygon"

    def rank(self):
        """Per-class statistics of the current target for every region Shapes layer; returns the table."""
        from ..analysis.region_stats import region_statistics
        from ..layer_data import layer_adata
        from ..layer_data.annotations import layers_to_annotations
        from ._annotations import region_shapes_layers

        target = self.get_target()
        if target is None or layer_adata(target) is None:
            show_error("Choose predictions in Explore first.")
            return None
        adata = layer_adata(target)
        meta = target.metadata.get(KEY, {}) if isinstance(target.metadata, dict) else {}
        annotations = layers_to_annotations(region_shapes_layers(self.viewer), meta.get("mpp"))
        if not annotations.classes:
            show_error("Draw a region first (Draw region), or add annotations under Load.")
            return None
        table = run_guarded(lambda: region_statistics(adata, annotations, n_placements=PLACEMENTS))
        if table is None or table.empty:
            if table is not None:
                show_error("No spot lies inside the regions: draw them over the spots.")
            return None
        order = {name: i for i, name in enumerate(pd.unique(table["class"]))}
        table = table.assign(_c=table["class"].map(order)).sort_values(["_c", "difference"], ascending=[True, False])
        self.table = table.drop(columns="_c").reset_index(drop=True)
        first = self.table.groupby("class", sort=False).first()
        self.summary.setText("; ".join(_class_summary(c, r, len(first) > 1) for c, r in first.iterrows()))
        self._show(self.table)
        return self.table

    def _show(self, table) -> None:
        top = table.groupby("class", sort=False).head(SHOWN_PER_CLASS)
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


def _class_summary(name: str, row, named: bool) -> str:
    """One class's spots inside/outside and, when predictions carry it, its mean novelty (0–1) inside vs outside."""
    text = f"{int(row.n_inside)} spots inside, {int(row.n_outside)} outside"
    if np.isfinite(row.novelty_inside):  # how unlike the training data the region is
        text += f", mean novelty {row.novelty_inside:.2f} inside vs {row.novelty_outside:.2f}"
    return f"{name}: {text}" if named else text
