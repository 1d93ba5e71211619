"""The canvas follows the selected layer: its title (text overlay), its colour bar alone, and for
domain and label layers a legend drawn over the canvas (bottom left).

A layer says what it shows in its metadata: ``gene`` and ``title`` (written by
:func:`~._canvas.show_gene`) or ``legend`` (names, RGB 0–255 colours, counts: written by Domains and by
Explore's label colouring).
"""

from __future__ import annotations

import weakref

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QFrame, QVBoxLayout, QWidget

from ..layer_data import KEY, role
from ._canvas import hide_colorbar
from ._colorbar import Legend


class CanvasLegend(QFrame):
    """Colour swatches and names over the canvas, bottom left, on a translucent white box."""

    def __init__(self, canvas: QWidget) -> None:
        super().__init__(canvas)
        self.setObjectName("mclstexpCanvasLegend")
        self.setStyleSheet(
            "#mclstexpCanvasLegend { background: rgba(255, 255, 255, 215); border-radius: 4px; }"
            "#mclstexpCanvasLegend QLabel { color: black; background: transparent; }"
        )
        self.legend = Legend(self)
        box = QVBoxLayout(self)
        box.setContentsMargins(6, 4, 6, 4)
        box.addWidget(self.legend)
        self.hide()
        canvas.installEventFilter(self)

    @property
    def entries(self) -> list[tuple[str, tuple[int, int, int]]]:
        """``(name, rgb)`` of each swatch shown."""
        return self.legend.entries

    def set(self, names, colors, counts=None) -> None:
        """Show ``names`` with their ``colors`` (RGB 0–255) and ``counts``; nothing hides the box."""
        self.legend.set(names, colors, counts)
        if len(names):
            self.adjustSize()
            self._place()
            self.show()
            self.raise_()
        else:
            self.hide()

    def _place(self) -> None:
        parent = self.parentWidget()
        if parent is not None:
            self.move(8, max(0, parent.height() - self.height() - 8))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
        if event.type() == QEvent.Type.Resize:
            self._place()
        return False


class CanvasFollower:
    """Keeps the canvas's title, colour bars and legend on the selected layer of one viewer."""

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        canvas = viewer.window._qt_viewer.canvas.native
        self.legend = CanvasLegend(canvas)
        viewer.layers.selection.events.active.connect(self.update)
        canvas.destroyed.connect(lambda *_: viewer.layers.selection.events.active.disconnect(self.update))

    def update(self, *_args) -> None:
        """Show what the selected plugin layer shows (foreign layers leave the canvas as it is)."""
        layer = self.viewer.layers.selection.active
        meta = layer.metadata.get(KEY) if layer is not None and isinstance(layer.metadata, dict) else None
        if not isinstance(meta, dict) or role(layer) is None:
            return
        for other in self.viewer.layers:
            if other is not layer:
                hide_colorbar(other)
        self._uncover(layer, meta)
        text = self.viewer.canvas.overlays.text
        text.position = "top_left"  # the colour bar takes the top right
        if meta.get("legend") is not None:
            names, colors, counts = meta["legend"]
            hide_colorbar(layer)
            text.text = meta.get("legend_title") or f"{layer.name} ({len(names)})"
            self.legend.set(names, colors, counts)
        elif meta.get("gene") is not None:
            bar = getattr(layer, "face_colorbar", None) or getattr(layer, "colorbar", None)
            if bar is not None:
                bar.visible = True
            text.text = meta.get("title") or str(meta["gene"])
            self.legend.set([], [])
        else:
            text.text = layer.name
            self.legend.set([], [])
        text.visible = True

    def _uncover(self, layer, meta: dict) -> None:
        """Hide the coloured layers of the same spots drawn over ``layer`` (e.g. domains over the gene
        just selected): the canvas then shows what its title and colour bar say."""
        if meta.get("gene") is None and meta.get("legend") is None:
            return
        index = self.viewer.layers.index(layer)
        for other in list(self.viewer.layers)[index + 1 :]:
            other_meta = other.metadata.get(KEY) if isinstance(other.metadata, dict) else None
            if (
                other.visible
                and isinstance(other_meta, dict)
                and (other_meta.get("gene") is not None or other_meta.get("legend") is not None)
                and len(getattr(other, "data", ())) == len(getattr(layer, "data", ()))
            ):
                other.visible = False
        layer.visible = True


_FOLLOWERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def follow_selection(viewer) -> CanvasFollower:
    """The :class:`CanvasFollower` of ``viewer`` (installed on first use; one per viewer, whichever
    proxy of it a widget was given)."""
    viewer = getattr(viewer, "__wrapped__", viewer)
    if viewer not in _FOLLOWERS:
        _FOLLOWERS[viewer] = CanvasFollower(viewer)
    return _FOLLOWERS[viewer]
