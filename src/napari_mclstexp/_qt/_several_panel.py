"""Explore's "Several genes, several slides" panel: a 3-gene composite, small multiples of up to nine
genes, and a slide grid of up to nine predictions on one colour scale (one grid mechanism for both)."""

from __future__ import annotations

from collections.abc import Callable

from napari.utils.notifications import show_error
from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLineEdit, QWidget

from ..layer_data import layer_adata, layers_with_role
from ..layer_data.multi import MAX_CELLS, PALETTES, read_prediction_folder
from ._common import PathEdit, button
from ._grid import GridView
from ._multi_gene import SmallMultiples, Values, show_composite
from ._slide_grid import SlideGrid

NONE = "(none)"


class SeveralPanel(QGroupBox):
    """Composite, small multiples and slide grid of the Explore widget's target predictions."""

    def __init__(
        self,
        viewer,
        target,
        reliability: Callable[[], dict],
        side_by_side: Callable[[bool], object] | None = None,
        parent: QWidget | None = None,
        values: Values | None = None,
    ) -> None:
        """``target``: the Explore widget's layer combo; ``side_by_side(False)`` ends its measured-beside-
        predicted view before a grid of this panel opens; ``values(layer, gene)``: what Explore colours a
        layer by (measured counts normalised like the predictions), which the composite shows too."""
        super().__init__("Several genes, several slides", parent)
        self.viewer, self.target, self.reliability = viewer, target, reliability
        self._side_by_side = side_by_side
        self._values = values
        self.channels = [QComboBox() for _ in range(3)]
        self.palette = QComboBox()
        self.palette.addItems(list(PALETTES))
        channels = QHBoxLayout()
        for box in (*self.channels, self.palette):  # long gene names must not widen the dock
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(4)
        for box in self.channels:
            channels.addWidget(box)
        self.multiples = QLineEdit()
        self.multiples.setPlaceholderText(f"genes, comma-separated (empty: the {MAX_CELLS} most reliable)")
        self.folder = PathEdit("folder of .h5ad (empty: the predictions loaded)", mode="folder")
        self.slide_gene = QComboBox()
        self.slide_gene.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.slide_gene.setMinimumContentsLength(6)
        self.slide_gene.activated.connect(lambda *_: self.slides.set_gene(self.slide_gene.currentText()))
        form = QFormLayout(self)
        form.addRow("Composite", channels)
        form.addRow("Colours", self.palette)
        form.addRow("", button("Show composite", self.composite))
        form.addRow("Multiples", self.multiples)
        form.addRow("", button("Small multiples", self.small_multiples))
        form.addRow("Slides", self.folder)
        form.addRow("Slide gene", self.slide_gene)
        row = QHBoxLayout()
        row.addWidget(button("Slide grid", self.slide_grid))
        row.addWidget(button("One view", self.one_view))
        form.addRow("", row)
        grid = GridView(viewer)
        self.cells, self.slides = SmallMultiples(viewer, grid), SlideGrid(viewer, grid)
        target.currentIndexChanged.connect(lambda *_: self.refresh())
        self.refresh()

    def _genes(self) -> list[str]:
        layer = self.target.layer()
        adata = layer_adata(layer) if layer is not None else None
        return [] if adata is None else list(map(str, adata.var_names))

    def refresh(self) -> None:
        """Offer the target's genes in the composite's channels (the most reliable first)."""
        genes = self._genes()
        r = self.reliability()
        ranked = sorted(genes, key=lambda g: -r[g] if r.get(g) == r.get(g) and g in r else 0.0)
        for k, box in enumerate(self.channels):
            box.clear()
            box.addItems([NONE, *ranked])
            box.setCurrentIndex(k + 1 if k < len(ranked) else 0)

    def composite(self):
        """Show the composite of the chosen genes over the target layer."""
        layer = self.target.layer()
        genes = [b.currentText() for b in self.channels if b.currentText() not in ("", NONE)]
        if layer is None or not genes:
            show_error("Choose predictions and up to three genes for the composite.")
            return None
        self.one_view()
        try:
            return show_composite(self.viewer, layer, genes, self.palette.currentText(), self._values)
        except ValueError as exc:
            show_error(str(exc))
            return None

    def small_multiples(self) -> list:
        """Show up to nine genes of the target in a grid (typed, else the most reliable)."""
        layer = self.target.layer()
        if layer is None:
            show_error("No predictions to show.")
            return []
        typed = [g.strip() for g in self.multiples.text().split(",") if g.strip()]
        genes = typed or [self.channels[0].itemText(i) for i in range(1, self.channels[0].count())][:MAX_CELLS]
        self.one_view()
        try:
            return self.cells.show(layer, genes, self.reliability(), values=self._values)
        except ValueError as exc:
            show_error(str(exc))
            return []

    def slide_grid(self) -> list:
        """The folder's predictions (else the loaded ones) side by side on one scale per gene."""
        folder = self.folder.text()
        try:
            if folder:
                adatas, mpps = read_prediction_folder(folder), None
            else:
                loaded = layers_with_role(self.viewer, "predicted", "dense")[:MAX_CELLS]
                adatas = [layer_adata(layer) for layer in loaded]
                mpps = [layer.metadata["mclstexp"].get("mpp") for layer in loaded]
            self.one_view()
            layers = self.slides.show(adatas, self.slide_gene.currentText() or None, mpps=mpps)
        except ValueError as exc:  # InputError is a ValueError
            show_error(str(exc))
            return []
        self.slide_gene.clear()
        self.slide_gene.addItems(self.slides.genes)
        self.slide_gene.setCurrentText(self.slides.gene or "")
        return layers

    def one_view(self) -> None:
        """Close the small multiples or the slide grid (and the measured-beside-predicted view)."""
        if self._side_by_side is not None:
            self._side_by_side(False)
        self.close_grids()

    def close_grids(self) -> None:
        """Close the small multiples or the slide grid of this panel."""
        self.cells.close()
        self.slides.close()
