"""Region review panel: every drawn or imported region (Shapes layers, one class each), per-class gene
statistics inside vs outside (:mod:`napari_mclstexp.analysis.region_stats`) computed in a worker (the
viewer stays live, Cancel stops it, a second Rank genes replaces it), the table saved as CSV."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from ..analysis.region_rank import RANK_BY, rank_genes
from ..layer_data import KEY
from ._common import PathEdit, button
from ._worker import TaskPanel, run_guarded

COLUMNS = ("class", "gene", "log2_fold_change", "p_adjusted", "difference", "z", "mean_inside", "mean_outside")
#: Rows shown per class (the CSV has every gene).
SHOWN_PER_CLASS = 15
#: Random placements per class for the p-values (the CLI's default).
PLACEMENTS = 200
DESCRIPTION = "Rank genes"


def region_edge_width(target) -> float:
    """A region outline about 2 screen pixels wide when ``target`` fills a 600 px canvas, in the data
    units of a Shapes layer at ``target``'s scale (napari's edge width is in data units: a fixed number
    was 2 px on spots and a band hundreds of µm wide on whole-slide tiles, whose scale is a tile)."""
    if target is None:
        return 2.0
    extent = np.asarray(target.extent.data, float)[:, -2:]
    return float(max(np.max(extent[1] - extent[0]), 1e-9) / 300.0)


class RegionPanel(QWidget):
    """Ranks genes of the Explore widget's current predictions inside every region, in a worker.

    ``task.finished`` carries the table (``None`` after an error or a cancel); :attr:`table` keeps the last.
    """

    def __init__(
        self, viewer, get_target, parent: QWidget | None = None, before_draw: Callable[[], object] | None = None
    ) -> None:
        super().__init__(parent)
        self.viewer, self.get_target = viewer, get_target
        self._before_draw = before_draw  # e.g. end measured-beside-predicted: a region maps to spots in place
        self.table_widget = QTableWidget(0, len(COLUMNS))
        self.table_widget.setHorizontalHeaderLabels(list(COLUMNS))
        self.table_widget.setMinimumHeight(140)
        self.summary = QLabel("Draw a region (or add annotations under Load), then press Rank genes.")
        self.summary.setWordWrap(True)
        self.rank_by = QComboBox()
        self.rank_by.addItems(list(RANK_BY))
        self.rank_by.setToolTip("order of each class's genes (decreasing); log2 fold change: the reported effect")
        self.rank_by.activated.connect(lambda *_: self._rerank())
        self.csv_path = PathEdit("region_genes.csv", mode="save", filter="CSV (*.csv)")
        self.task = TaskPanel()
        self.task.finished.connect(self._finished)
        row = QHBoxLayout()
        row.addWidget(button("Draw region", self.draw_region))
        row.addWidget(button(DESCRIPTION, self.rank))
        row.addWidget(self.rank_by)
        save = QHBoxLayout()
        save.addWidget(self.csv_path, 1)
        save.addWidget(button("Save CSV", self.save_csv))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.task)
        layout.addWidget(self.summary)
        layout.addWidget(self.table_widget)
        layout.addLayout(save)
        self.table: pd.DataFrame | None = None
        self._again = False  # Rank genes pressed while a review ran: start anew once it has stopped

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
        """Select the region layer in polygon mode (after ``before_draw``)."""
        if self._before_draw is not None:
            self._before_draw()
        layer = self.region_layer()
        self.viewer.layers.selection.active = layer
        layer.mode = "add_polygon"

    def rank(self):
        """Start the per-class statistics of the current target over every region Shapes layer.

        The regions are read now; the statistics run in a worker and fill the table when done.  Pressed
        while a review runs, it cancels that one and starts again once it has stopped (with the regions
        as they are then).  Returns the worker, or ``None`` (nothing to review, or a restart queued).
        """
        if self.task.running:
            self._again = True
            self.task.cancel()
            return None
        job = self._job()
        if job is None:
            return None
        adata, annotations = job
        rank_by = self.rank_by.currentText()
        self.summary.setText(f"{len(annotations.classes)} classes over {adata.n_obs:,} spots: ranking…")
        return self.task.start(
            lambda token: _review(adata, annotations, rank_by, token), self._show_result, description=DESCRIPTION
        )

    def _job(self):
        """``(predictions, annotations)`` to review, or ``None`` after telling the user what is missing."""
        from ..layer_data import layer_adata
        from ..layer_data.annotations import layers_to_annotations
        from ._annotations import region_shapes_layers

        target = self.get_target()
        if target is None or layer_adata(target) is None:
            show_error("Choose predictions in Explore first.")
            return None
        meta = target.metadata.get(KEY, {}) if isinstance(target.metadata, dict) else {}
        annotations = layers_to_annotations(region_shapes_layers(self.viewer), meta.get("mpp"))
        if not annotations.classes:
            show_error("Draw a region first (Draw region), or add annotations under Load.")
            return None
        return layer_adata(target), annotations

    def _finished(self, _value) -> None:
        if self._again:
            self._again = False
            self.rank()

    def _show_result(self, table: pd.DataFrame) -> None:
        """The worker's table → the summary line and the table widget (GUI thread)."""
        if table is None or table.empty:
            self.summary.setText("No spot lies inside the regions: draw them over the spots.")
            show_error("No spot lies inside the regions: draw them over the spots.")
            return
        self.table = table
        first = self.table.groupby("class", sort=False).first()
        self.summary.setText("; ".join(_class_summary(c, r, len(first) > 1) for c, r in first.iterrows()))
        self._show(self.table)

    def _rerank(self) -> None:
        """Order the last table by the statistic now chosen (no recomputation)."""
        if self.table is not None:
            self.table = rank_genes(self.table, self.rank_by.currentText()).reset_index(drop=True)
            self._show(self.table)

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


def _review(adata, annotations, rank_by: str, token):
    """The engine's statistics as a generator whose first step, in the worker, imports them (scipy.stats
    takes ~0.5 s to import: not in the GUI thread)."""
    from ..analysis.region_stats import iter_region_statistics

    gen = iter_region_statistics(adata, annotations, n_placements=PLACEMENTS, rank_by=rank_by, cancel=token)
    return (yield from gen)


def _class_summary(name: str, row, named: bool) -> str:
    """One class's spots inside/outside and, when predictions carry it, its mean novelty (0–1) inside vs outside."""
    text = f"{int(row.n_inside)} spots inside, {int(row.n_outside)} outside"
    if np.isfinite(row.novelty_inside):  # how unlike the training data the region is
        text += f", mean novelty {row.novelty_inside:.2f} inside vs {row.novelty_outside:.2f}"
    return f"{name}: {text}" if named else text
