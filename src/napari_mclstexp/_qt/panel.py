"""The mclSTExp panel: one dock that walks Data → Train → Predict → Explore → Domains → Export.

Each step is the plugin's own widget (the same that the Plugins menu opens apart); the panel moves its
main button and status line out of its scrolling form into a footer that stays in view, starts every
step on the section in view (:class:`~._state.PanelState`), and lets the canvas follow the selected layer
(:mod:`._canvas_follow`).
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from ._canvas_follow import follow_selection
from ._state import PanelState, section_layer
from .domains import DomainsWidget
from .explore import ExploreWidget
from .export import ExportWidget
from .load import LoadWidget
from .predict import PredictWidget
from .train import TrainWidget

#: Step name → the texts of its main buttons (moved to the footer, in a row).
MAIN_BUTTONS = {
    "Data": ("Load",),
    "Train": ("Train",),
    "Predict": ("Predict",),
    "Explore": (),
    "Domains": ("Find domains",),
    "Export": (".h5ad", "CSV", "QuPath GeoJSON", "Screenshot"),
}
#: What each step is for, one line above its form.
HINTS = {
    "Data": "Open a slide with its spots, or a Visium / her2st folder.",
    "Train": "Ticked sections train the model; the section in view is left out to be scored.",
    "Predict": "Predict the section in view, at its spots or over the whole slide.",
    "Explore": "Search a gene; Enter colours the section by it.",
    "Domains": "Cluster the predictions into spatial domains.",
    "Export": "Save the chosen layer for QuPath, AnnData or a spreadsheet.",
}


class McLSTExpPanel(QWidget):
    """One dock for the whole walk; ``load``, ``train``, ``predict``, ``explore``, ``domains`` and
    ``export`` are the step widgets, ``state`` the section/model/prediction they share."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.load = LoadWidget(napari_viewer)
        self.train = TrainWidget(napari_viewer)
        self.predict = PredictWidget(napari_viewer)
        self.explore = ExploreWidget(napari_viewer)
        self.domains = DomainsWidget(napari_viewer)
        self.export = ExportWidget(napari_viewer)
        self.tabs = QTabWidget()
        self.tabs.setUsesScrollButtons(False)
        self._footers: dict[str, list[QWidget]] = {}
        widgets = (self.load, self.train, self.predict, self.explore, self.domains, self.export)
        for (name, texts), widget in zip(MAIN_BUTTONS.items(), widgets, strict=True):
            self.tabs.addTab(self._page(name, widget, texts), name)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self.setMinimumWidth(max(self._page_width(w) for w in widgets))
        self.canvas_legend = follow_selection(napari_viewer).legend
        self.state = PanelState(napari_viewer, self)
        self.state.changed.connect(self.follow_section)
        self.follow_section()

    def _page(self, name: str, widget: QWidget, texts: tuple[str, ...]) -> QWidget:
        """The step's widget (its form scrolls vertically) above a footer with its main buttons, its
        progress and status line, always in view."""
        page = QWidget()
        box = QVBoxLayout(page)
        box.setContentsMargins(4, 4, 4, 4)
        hint = QLabel(HINTS[name])
        hint.setWordWrap(True)
        hint.setStyleSheet("color: gray;")
        box.addWidget(hint)
        area = getattr(widget, "scroll_area", None)
        if isinstance(area, QScrollArea):
            area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        box.addWidget(widget, 1)
        footer: list[QWidget] = []
        buttons = [b for text in texts for b in widget.findChildren(QPushButton) if b.text() == text]
        if buttons:
            row = QHBoxLayout()
            for b in buttons:
                row.addWidget(b)
            box.addLayout(row)
            footer += buttons
        for attr in ("task", "info", "result_label", "scores"):
            part = getattr(widget, attr, None)
            if isinstance(part, QWidget):
                box.addWidget(part)
                footer.append(part.status if attr == "task" else part)
        if not footer and hasattr(widget, "search"):
            footer.append(widget.search)
        self._footers[name] = footer
        return page

    @staticmethod
    def _page_width(widget: QWidget) -> int:
        """Width at which the step's form needs no sideways scrolling (beside a vertical scroll bar)."""
        area = getattr(widget, "scroll_area", None)
        if not isinstance(area, QScrollArea) or area.widget() is None:
            return widget.minimumSizeHint().width()
        return area.widget().minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width() + 12

    def show_step(self, step: str) -> None:
        """Bring ``step`` (a key of :data:`MAIN_BUTTONS`, e.g. ``"Explore"``) to the front."""
        self.tabs.setCurrentIndex(list(MAIN_BUTTONS).index(step))

    def in_view(self, step: str) -> list[QWidget]:
        """The widgets of ``step`` that must be in view without scrolling: its main buttons and status."""
        return list(self._footers[step])

    def follow_section(self) -> None:
        """Start every step on the section in view and its newest prediction (never a hidden one)."""
        viewer, section = self.viewer, self.state.section
        spots = section_layer(viewer, section, ("spots",))
        slide = section_layer(viewer, section, ("slide",))
        pred = section_layer(viewer, section, ("predicted", "dense"))
        for combo, layer in (
            (self.predict.spots, spots),
            (self.predict.slide, slide),
            (self.explore.target, pred or spots),
            (self.domains.target, pred),
            (self.export.layer, pred or spots),
        ):
            if layer is not None and combo.currentText() != layer.name:
                combo.select(layer)
        self.train.refresh_sections()
