"""The mclSTExp panel: one dock that walks Data → Train → Predict → Explore → Domains → Export.

Each step is the plugin's own widget (the same that the Plugins menu opens apart); the panel moves its
main button and status line out of its scrolling form into a footer that stays in view, starts every
step on the section in view (:class:`~._state.PanelState`), and lets the canvas follow the selected layer
(:mod:`._canvas_follow`).
"""

from __future__ import annotations

import importlib
import threading

from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from . import _collector
from ._gui_steps import GuiSteps

#: Step name → (module, widget class) of the step's widget, imported in a thread (pandas, scipy, napari's
#: layer modules: seconds of the GUI thread when the panel imported them itself).
STEP_WIDGETS = {
    "Data": ("load", "LoadWidget"),
    "Train": ("train", "TrainWidget"),
    "Predict": ("predict", "PredictWidget"),
    "Explore": ("explore", "ExploreWidget"),
    "Domains": ("domains", "DomainsWidget"),
    "Export": ("export", "ExportWidget"),
}
#: The panel's attribute of each step's widget.
ATTRIBUTES = ("load", "train", "predict", "explore", "domains", "export")
_SUPPORT = ("_state", "_canvas_follow")

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
    ``export`` are the step widgets, ``state`` the section/model/prediction they share.

    The dock opens at once: the step widgets' modules are imported in a thread, then each widget goes in
    one per turn of the event loop (:attr:`ready` once all are in; asking for a step's widget before
    that builds the rest at once)."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        _collector.watch(self, napari_viewer)
        self.viewer = napari_viewer
        self.tabs = QTabWidget()
        self.tabs.setUsesScrollButtons(False)
        self._footers: dict[str, list[QWidget]] = {}
        self._pages: dict[str, QVBoxLayout] = {}
        for name in MAIN_BUTTONS:
            page = QWidget()
            box = QVBoxLayout(page)
            box.setContentsMargins(4, 4, 4, 4)
            box.addWidget(QLabel("opening…"))
            self._pages[name] = box
            self.tabs.addTab(page, name)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self.steps = GuiSteps(self)
        self._built = False
        # the step widgets' modules load in a thread, then each widget is built in its own event-loop turn
        self._imported = threading.Event()
        self._relay = _Relay(self)
        self._relay.imported.connect(lambda: self.steps.add(*self._build_steps()))
        threading.Thread(target=self._import_modules, name="mclstexp-panel-imports", daemon=True).start()

    def _import_modules(self) -> None:
        try:
            for module in [m for m, _ in STEP_WIDGETS.values()] + list(_SUPPORT):
                importlib.import_module(f"{__package__}.{module}")
        finally:
            self._imported.set()
            try:
                self._relay.imported.emit()
            except RuntimeError:  # the panel was closed meanwhile
                pass

    @property
    def ready(self) -> bool:
        """Whether every step's widget is in."""
        return self._built

    def __getattr__(self, name: str):
        # a step's widget asked for before the panel finished opening (scripts, tests): finish it now
        if name in (*ATTRIBUTES, "state", "canvas_legend") and not self.__dict__.get("_built", True):
            self.finish_opening()
            return self.__dict__[name]
        raise AttributeError(name)

    def finish_opening(self) -> None:
        """Build what is still to build now, in this turn of the event loop."""
        if self._built:
            return
        self._imported.wait()
        self.steps.clear()
        for step in self._build_steps():
            step()

    def _build_steps(self) -> list:
        steps = [lambda name=name: self._build_page(name) for name in MAIN_BUTTONS if name not in self._footers]
        return [*steps, self._finish] if not self._built else []

    def _build_page(self, name: str) -> None:
        if name in self._footers:
            return
        module, cls = STEP_WIDGETS[name]
        widget = getattr(importlib.import_module(f"{__package__}.{module}"), cls)(self.viewer)
        setattr(self, ATTRIBUTES[list(MAIN_BUTTONS).index(name)], widget)
        box = self._pages[name]
        placeholder = box.takeAt(0).widget()
        placeholder.deleteLater()
        self._page(box, name, widget, MAIN_BUTTONS[name])

    def _finish(self) -> None:
        if self._built:
            return
        from ._canvas_follow import follow_selection
        from ._state import PanelState

        widgets = [self.__dict__[a] for a in ATTRIBUTES]
        self.setMinimumWidth(max(self._page_width(w) for w in widgets))
        self.canvas_legend = follow_selection(self.viewer).legend
        self.state = PanelState(self.viewer, self)
        self.state.changed.connect(self.follow_section)
        self._built = True
        self.follow_section()

    def _page(self, box: QVBoxLayout, name: str, widget: QWidget, texts: tuple[str, ...]) -> None:
        """The step's widget (its form scrolls vertically) above a footer with its main buttons, its
        progress and status line, always in view."""
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
        self.finish_opening()
        return list(self._footers[step])

    def follow_section(self) -> None:
        """Start every step on the section in view and its newest prediction (never a hidden one)."""
        from ._state import section_layer

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


class _Relay(QObject):
    """Carries "the modules are imported" from the import thread to the GUI thread."""

    imported = Signal()
