"""Explore widget: searchable gene list, colormap, contrast limits, colorbar, measured vs predicted side
by side, uncertainty, value on hover, and region review.

The expression matrix stays in the engine (the layer's AnnData); a gene switch writes one features
column (hover) and one RGBA array (see :mod:`._colors`), or swaps the data of a dense Image layer.
"""

from __future__ import annotations

import time

import numpy as np
from napari.layers import Points
from napari.utils.notifications import show_error
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListView,
    QWidget,
)
from scipy import sparse

from .. import prediction_meta
from ..layer_data import KEY, layer_adata, layers_with_role, role
from . import _collector
from ._canvas import gene_title, hide_colorbar, show_gene
from ._colorbar import ColorBar, Legend
from ._colors import auto_limits, set_points_values
from ._common import LayerCombo, button, scroll_layout, viewer_models
from ._gene_list import GENE_ROLE, SORTS, GeneModel
from ._missing_gene import MissingGene
from ._region_panel import RegionPanel
from ._several_panel import SeveralPanel
from ._side_by_side import SideBySide

NO_LABELS = "(gene values)"
COLORMAPS = ("viridis", "magma", "inferno", "plasma", "turbo", "cividis", "gray")


def column(adata, gene: str) -> np.ndarray:
    """One gene's values as a float32 vector (dense or sparse ``X``)."""
    j = adata.var_names.get_loc(gene)
    col = adata.X[:, j]
    col = col.toarray() if sparse.issparse(col) else np.asarray(col)
    return col.ravel().astype(np.float32, copy=False)


class ExploreWidget(QWidget):
    """Colour predictions (and the measured spots beside them) by a gene."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        _collector.watch(self, napari_viewer)
        self.viewer = napari_viewer
        self.target = LayerCombo(napari_viewer, ["predicted", "dense", "spots"])
        self.target.currentIndexChanged.connect(lambda *_: self.refresh_genes())
        self.search = QLineEdit()
        self.search.setPlaceholderText("search genes… (Enter: top match)")
        self.model = GeneModel()
        self.proxy = self.model  # filters and orders itself (no sorting proxy: see GeneModel)
        self.search.textChanged.connect(self.proxy.set_query)
        self.search.returnPressed.connect(self.choose_top_match)
        self.sort = QComboBox()
        self.sort.addItems(SORTS)
        self.sort.currentTextChanged.connect(self.proxy.set_sort)
        self.gene_list = QListView()
        self.gene_list.setModel(self.proxy)
        self.gene_list.setMinimumHeight(120)
        self.gene_list.selectionModel().currentChanged.connect(
            lambda cur, _prev: cur.isValid() and self.set_gene(cur.data(GENE_ROLE))
        )
        self.colormap = QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.colormap.currentTextChanged.connect(lambda *_: self.redraw())
        self.low, self.high = QDoubleSpinBox(), QDoubleSpinBox()
        for box in (self.low, self.high):
            box.setRange(-1e9, 1e9)
            box.setDecimals(4)
            box.setKeyboardTracking(False)
            box.valueChanged.connect(lambda *_: self.redraw(auto=False))
        limits = QHBoxLayout()
        limits.addWidget(self.low)
        limits.addWidget(self.high)
        limits.addWidget(button("Auto", lambda: self.redraw(auto=True)))
        self.side_by_side = QCheckBox("measured beside predicted")
        self.side_by_side.toggled.connect(self.show_side_by_side)
        self.show_uncertainty = QCheckBox("uncertainty layer")
        self.show_uncertainty.toggled.connect(self._toggle_uncertainty)
        self.colorbar = ColorBar()
        self.labels = QComboBox()
        self.labels.setToolTip("colour the spots by reference labels (pathologist annotation, clusters)")
        self.labels.activated.connect(lambda *_: self.colour_by_labels(self.labels.currentText()))
        self.legend = Legend()
        form = QFormLayout()
        form.addRow("Layer", self.target)
        form.addRow("Gene", self.search)
        form.addRow("Sort by", self.sort)
        form.addRow("", self.gene_list)
        form.addRow("Colormap", self.colormap)
        form.addRow("Limits", limits)
        form.addRow("Labels", self.labels)
        layout = scroll_layout(self)
        layout.addLayout(form)
        self.missing = MissingGene(napari_viewer, self._show_measured)
        self.search.textChanged.connect(lambda *_: self.missing.clear())
        form.insertRow(2, "", self.missing)
        layout.addWidget(self.colorbar)
        layout.addWidget(self.legend)
        layout.addWidget(self.side_by_side)
        layout.addWidget(self.show_uncertainty)
        self.regions = RegionPanel(
            napari_viewer, self.target.layer, before_draw=lambda: self.side_by_side.setChecked(False)
        )
        self.side = SideBySide(napari_viewer, self)
        layout.addWidget(self.regions)
        self.several = SeveralPanel(
            napari_viewer, self.target, self.reliability, self.side_by_side.setChecked, values=self.values
        )
        layout.addWidget(self.several)
        self.gene: str | None = None
        self.limits: tuple[float, float] = (0.0, 1.0)
        self.last_switch_ms: float = float("nan")
        self.last_napari_ms: float = float("nan")
        self._measured_cache: dict[object, tuple[list[str], np.ndarray]] = {}
        self.refresh_genes()
        viewer_models(napari_viewer).predictions_added.connect(self.follow)
        target = self.target.layer()
        if target is not None and role(target) in ("predicted", "dense") and self.best_gene():
            self.set_gene(self.best_gene())  # opened after predicting: show a gene, not limits 0–0

    def follow(self, name: str, gene: str = "") -> None:
        """Show new predictions: target the layer ``name`` and colour it by ``gene`` (default: the
        most reliable one) with its name and colour bar on the canvas."""
        if name not in self.viewer.layers or self.side_by_side.isChecked():
            return
        self.target.select(self.viewer.layers[name])
        self.refresh_genes()
        self.set_gene(gene or self.best_gene())

    def best_gene(self) -> str | None:
        """The target layer's gene shown last, else its most reliable (or most variable) gene."""
        from ..analysis.reliability import best_gene

        layer = self.target.layer()
        adata = layer_adata(layer) if layer is not None else None
        if adata is None or not adata.n_vars:
            return None
        shown = layer.metadata.get(KEY, {}).get("gene")
        if shown in adata.var_names:
            return str(shown)
        return best_gene(list(map(str, adata.var_names)), self.reliability())

    def reliability(self) -> dict[str, float]:
        """``{gene: held-out r}`` of the target layer's predictions (``{}`` when unknown)."""
        from ..analysis.reliability import reliability_map

        layer = self.target.layer()
        adata = layer_adata(layer) if layer is not None else None
        if adata is None or role(layer) == "spots":
            predicted = layers_with_role(self.viewer, "predicted")
            adata = layer_adata(predicted[-1]) if predicted else adata
        return reliability_map(adata.uns.get("mclstexp", {}).get("reliability")) if adata is not None else {}

    def choose_top_match(self) -> None:
        """Enter in the search field: colour by the top row (the exact match when there is one)."""
        gene = self.proxy.first_gene()
        if gene is not None:
            self.gene_list.setCurrentIndex(self.proxy.index(0, 0))
            self.set_gene(gene)
        else:  # not silent: say the model lacks it, offer it measured
            self.missing.explain(self.search.text(), self.target.layer())

    def _show_measured(self, layer, gene: str) -> None:
        """Colour the measured spots ``layer`` by ``gene`` (offered when the model lacks it)."""
        self.target.select(layer)
        self.refresh_genes()
        self.search.blockSignals(True)
        self.search.setText(gene)
        self.search.blockSignals(False)
        self.set_gene(gene)

    # --- genes -------------------------------------------------------------------------------
    def refresh_genes(self) -> None:
        """Fill the gene list from the chosen layer's AnnData."""
        from ..analysis.reliability import RELIABLE_R

        layer = self.target.layer()
        adata = layer_adata(layer) if layer is not None else None
        genes = [] if adata is None else list(map(str, adata.var_names))
        reliability = self.reliability()
        self._refresh_label_columns(adata)
        if (genes, reliability) != getattr(self, "_listed", None):
            self._listed = (genes, reliability)
            self.model.set_genes(genes, reliability, RELIABLE_R)

    def _refresh_label_columns(self, adata) -> None:
        from ._label_colours import label_columns

        columns = [NO_LABELS, *label_columns(adata)]
        if columns != [self.labels.itemText(i) for i in range(self.labels.count())]:
            self.labels.clear()
            self.labels.addItems(columns)

    def colour_by_labels(self, column: str, layer=None) -> list[str]:
        """Colour the target's spots (or ``layer``) by the reference label ``column`` with a legend;
        ``NO_LABELS`` goes back to the gene.  Returns the legend's names."""
        from ._label_colours import paint_labels

        layer = layer or self.target.layer()
        adata = layer_adata(layer) if layer is not None else None
        if column == NO_LABELS or adata is None or column not in adata.obs or not isinstance(layer, Points):
            self.legend.set([], np.zeros((0, 3)))
            self.redraw()
            return []
        names, colours, counts = paint_labels(layer, adata, column)
        self.legend.set(names, colours, counts)
        hide_colorbar(layer)
        self.viewer.canvas.overlays.text.text = f"{layer.name}: {column}"
        layer.metadata[KEY].update(legend=(names, colours, counts), legend_title=f"{layer.name}: {column}")
        return names

    def values(self, layer, gene: str) -> np.ndarray | None:
        """Values of ``gene`` for ``layer``: predictions as they are; measured spots on the predictions'
        scale exactly as the engine scores them (:func:`~napari_mclstexp.analysis.metrics.measured_matrix`
        over the predicted panel with the prediction's recorded normalisation, ``log10_1e4`` when it records
        none); a measured gene outside that panel is normalised over all the sample's genes."""
        adata = layer_adata(layer)
        if adata is None or gene not in adata.var_names:
            return None
        if role(layer) != "spots":
            return column(adata, gene)
        pred = self._prediction()
        panel = list(map(str, pred.var_names)) if pred is not None else []
        if gene not in panel:
            return self._whole_transcriptome(adata, gene)
        key = (id(adata), id(pred))
        if key not in self._measured_cache or self._measured_cache[key][0] != panel:
            from ..analysis.metrics import measured_matrix

            matrix, _ = measured_matrix(adata, panel, self._normalization())
            self._measured_cache[key] = (panel, matrix.astype(np.float32))
        names, matrix = self._measured_cache[key]
        return matrix[:, names.index(gene)]

    def _whole_transcriptome(self, adata, gene: str) -> np.ndarray:
        """``gene`` normalised over every gene of the sample: the engine's normalisation of a
        two-column matrix (the gene, the rest of each spot's counts) gives exactly that."""
        from ..data.genes import normalize_counts

        key = ("totals", id(adata))
        if key not in self._measured_cache:
            self._measured_cache[key] = ([], np.asarray(adata.X.sum(axis=1), np.float64).ravel())
        counts = column(adata, gene).astype(np.float64)
        rest = np.maximum(self._measured_cache[key][1] - counts, 0.0)
        return normalize_counts(np.stack([counts, rest], axis=1), self._normalization())[:, 0]

    def _prediction(self):
        """The AnnData of the newest predicted-spots layer (whose panel and scale measured spots follow)."""
        predicted = layers_with_role(self.viewer, "predicted")
        return layer_adata(predicted[-1]) if predicted else None

    def _normalization(self) -> str:
        """The predictions' recorded normalisation, else the project's per-spot scale."""
        from ..data.scales import PER_SPOT

        pred = self._prediction()
        return (prediction_meta.normalization(pred) if pred is not None else None) or PER_SPOT

    def set_gene(self, gene: str, *, auto: bool = True) -> float:
        """Colour the target layer (and its measured pair when side by side) by ``gene``.

        Returns
        -------
        float
            Milliseconds of our own work (values, limits, colours, features); napari's own
            ``face_color`` update is kept apart in :attr:`last_napari_ms` and the redraw comes later.
        """
        self.gene = str(gene)
        return self.redraw(auto=auto)

    def redraw(self, auto: bool = True) -> float:
        """Recolour with the current gene, colormap and limits (``auto``: robust percentiles)."""
        layer = self.target.layer()
        if layer is None or self.gene is None:
            return float("nan")
        t0 = time.perf_counter()
        values = self.values(layer, self.gene)
        if values is None:
            show_error(f"{self.gene} is not in {layer.name}")
            return float("nan")
        pair = self._measured_pair(layer) if self.side_by_side.isChecked() else None
        pair_values = self.values(pair, self.gene) if pair is not None else None
        if auto:
            both = values if pair_values is None else np.concatenate([values, pair_values])
            self.limits = auto_limits(both)
            for box, v in ((self.low, self.limits[0]), (self.high, self.limits[1])):
                box.blockSignals(True)
                box.setValue(v)
                box.blockSignals(False)
        else:
            self.limits = (self.low.value(), self.high.value())
        cmap = self.colormap.currentText()
        napari_s = self._paint(layer, values, cmap)
        title = f"{self.gene} (normalised expression)"
        if pair is not None:
            if pair_values is None:  # never leave the previous gene's colours beside this one
                pair_values = np.full(len(pair.data), np.nan, np.float32)
                title += f"; not measured in {pair.name}"
            napari_s += self._paint(pair, pair_values, cmap)
        self.last_napari_ms = 1e3 * napari_s
        self.last_switch_ms = 1e3 * (time.perf_counter() - t0) - self.last_napari_ms
        self.colorbar.set(cmap, self.limits, title)
        self._name_on_canvas(layer, pair, cmap)
        return self.last_switch_ms

    def _name_on_canvas(self, layer, pair, cmap: str) -> None:
        """Gene name, reliability and colour bar on the canvas (one bar: the pair shares the limits)."""
        from ..analysis.reliability import RELIABLE_R

        r = self.reliability().get(self.gene) if role(layer) != "spots" else None
        title = gene_title(self.gene, r, RELIABLE_R) if role(layer) != "spots" else f"{self.gene} — measured"
        show_gene(self.viewer, layer, self.gene, cmap, self.limits, title)
        if pair is not None:
            hide_colorbar(pair)

    def _paint(self, layer, values: np.ndarray, cmap: str) -> float:
        """Recolour one layer; returns seconds spent in napari's own update."""
        if isinstance(layer, Points):
            return set_points_values(layer, values, cmap, self.limits)
        if "raster" in layer.metadata.get(KEY, {}):  # binned sample or its predictions
            from ..layer_data.raster import set_raster_values

            seconds = set_raster_values(layer, values, cmap, self.limits)
            if role(layer) == "predicted":
                layer.name = f"predicted {self.gene}"
            return seconds
        from ..predict.slide import grid_image

        image = grid_image(layer_adata(layer), values)
        t0 = time.perf_counter()
        layer.data = image
        layer.colormap = cmap
        layer.contrast_limits = self.limits  # the layer keeps its name: it holds every gene
        return time.perf_counter() - t0

    # --- companions --------------------------------------------------------------------------
    def _measured_pair(self, layer):
        source = layer.metadata.get(KEY, {}).get("source")
        return self.viewer.layers[source] if source and source in self.viewer.layers else None

    def _uncertainty_layer(self, layer):
        source = layer.metadata.get(KEY, {}).get("source") if layer is not None else None
        for candidate in layers_with_role(self.viewer, "uncertainty"):
            if candidate.metadata[KEY].get("source") == source:
                return candidate
        return None

    def show_side_by_side(self, on: bool) -> None:
        """Show the measured spots beside the predictions (each over the slide, see :class:`SideBySide`)."""
        layer = self.target.layer()
        pair = self._measured_pair(layer) if layer is not None else None
        if not on:
            self.side.disable()
            return
        if pair is None:
            show_error("No measured spots for these predictions.")
            self.side_by_side.setChecked(False)
            return
        self.several.close_grids()
        self.side.enable(pair, layer, then=lambda: self.redraw(auto=True))  # in steps (see SideBySide)

    def _toggle_uncertainty(self, on: bool) -> None:
        unc = self._uncertainty_layer(self.target.layer())
        if unc is None:
            if on:
                show_error("No uncertainty layer for these predictions.")
            return
        unc.visible = bool(on)
