"""Small Qt helpers shared by the widgets: file pickers, layer combos, adding layer tuples."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable

from napari.layers import Layer
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..layer_data import role


class PathEdit(QWidget):
    """A line edit with a Browse button (file open/save or folder)."""

    def __init__(
        self, placeholder: str = "", *, mode: str = "open", filter: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.mode, self.filter = mode, filter
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)

    def text(self) -> str:
        """The path typed or chosen (stripped)."""
        return self.edit.text().strip()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt naming
        self.edit.setText(str(text))

    def _browse(self) -> None:
        if self.mode == "folder":
            path = QFileDialog.getExistingDirectory(self, "Choose a folder")
        elif self.mode == "save":
            path, _ = QFileDialog.getSaveFileName(self, "Save as", "", self.filter)
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Open", "", self.filter)
        if path:
            self.edit.setText(path)


class LayerCombo(QComboBox):
    """A combo box of the viewer's layers with given roles, kept in sync with the layer list."""

    def __init__(self, viewer, roles: Iterable[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer, self.roles = viewer, tuple(roles)
        # long layer names must not widen the dock past the window (the panel does not scroll sideways)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(16)
        #: The user picked the current layer (else a refresh moves to the layer in view).
        self.chosen = False
        self._refreshing = False
        self.currentIndexChanged.connect(self._chosen)
        connect_while_alive(
            self,
            self.refresh,
            viewer.layers.events.inserted,
            viewer.layers.events.removed,
            viewer.layers.events.reordered,
        )
        self.refresh()

    def layers(self) -> list[Layer]:
        """Matching layers, newest first."""
        return [layer for layer in reversed(self.viewer.layers) if role(layer) in self.roles]

    def _chosen(self, *_args) -> None:
        if not self._refreshing:  # a user's pick or a widget's setCurrentText: kept over refreshes
            self.chosen = True

    def in_view(self) -> Layer | None:
        """The layer a step should start on: the selected one when it has a matching role, else the
        newest visible one (never a hidden one while a visible one is there), else the newest."""
        layers = self.layers()
        active = self.viewer.layers.selection.active
        if active in layers:
            return active
        visible = [layer for layer in layers if layer.visible]
        return (visible or layers or [None])[0]

    def refresh(self, *_args) -> None:
        current = before = self.currentText()
        if not self.chosen or current not in self.viewer.layers:
            preferred = self.in_view()
            current = preferred.name if preferred is not None else current
        self.blockSignals(True)
        self.clear()
        self.addItems([layer.name for layer in self.layers()])
        if current:
            index = self.findText(current)
            if index >= 0:
                self.setCurrentIndex(index)
        self.blockSignals(False)
        if self.currentText() != before:
            self._refreshing = True
            try:
                self.currentIndexChanged.emit(self.currentIndex())
            finally:
                self._refreshing = False

    def layer(self) -> Layer | None:
        """The selected layer, or ``None``."""
        name = self.currentText()
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def select(self, layer: Layer) -> None:
        """Select ``layer`` (refreshing first if needed)."""
        self.refresh()
        index = self.findText(layer.name)
        if index >= 0:
            self.setCurrentIndex(index)
            self.chosen = True


def connect_while_alive(widget: QWidget, slot: Callable, *events) -> None:
    """Connect napari ``events`` to ``slot`` until ``widget`` is destroyed (closed docks stop listening)."""
    for event in events:
        event.connect(slot)

    def disconnect(*_args) -> None:
        for event in events:
            try:
                event.disconnect(slot)
            except (RuntimeError, TypeError, ValueError):
                pass

    widget.destroyed.connect(disconnect)


class ViewerModels(QObject):
    """Per-viewer memory shared by the widgets: the model bundle last saved by Train.

    Signals
    -------
    bundle_saved(str)
        A bundle was written (its path); Predict fills an empty Bundle field with it.
    predictions_added(str, str)
        Predict added a layer (its name) coloured by a gene (its name); Explore follows it.
    """

    bundle_saved = Signal(str)
    predictions_added = Signal(str, str)

    def __init__(self) -> None:
        super().__init__()
        self.last_bundle = ""

    def saved(self, path: str) -> None:
        """Remember and announce a saved bundle."""
        self.last_bundle = str(path)
        self.bundle_saved.emit(self.last_bundle)


_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def viewer_models(viewer) -> ViewerModels:
    """The :class:`ViewerModels` of ``viewer`` (created on first use, gone with the viewer)."""
    if viewer not in _MODELS:
        _MODELS[viewer] = ViewerModels()
    return _MODELS[viewer]


def add_layer_tuples(viewer, tuples: Iterable[tuple]) -> list[Layer]:
    """Add ``(data, kwargs, type)`` tuples to the viewer; returns the new layers."""
    added = []
    for data, kwargs, layer_type in tuples:
        layer = Layer.create(data, dict(kwargs), layer_type)
        added.append(viewer.add_layer(layer))
    return added


def button(text: str, slot: Callable[[], object]) -> QPushButton:
    """A push button calling ``slot`` with no arguments."""
    b = QPushButton(text)
    b.clicked.connect(lambda *_: slot())
    return b


def scroll_layout(widget: QWidget) -> QVBoxLayout:
    """Give ``widget`` a vertical scroll area and return the layout to fill inside it.

    Docks then fit small screens (1366×768 with all six widgets open): each dock shrinks to a few
    rows and scrolls instead of pushing the next dock below the window's edge.
    """
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setMinimumHeight(60)
    inner = QWidget()
    area.setWidget(inner)
    outer.addWidget(area)
    widget.scroll_area = area
    return QVBoxLayout(inner)
