"""The canvas follows the selected layer: its title (text overlay), its colour bar alone, and for
domain and label layers a legend drawn over the canvas (bottom left).

A layer says what it shows in its metadata: ``gene`` and ``title`` (written by
:func:`~._canvas.show_gene`) or ``legend`` (names, RGB 0–255 colours, counts: written by Domains and by
Explore's label colouring).
"""

from __future__ import annotations

import weakref

import numpy as np
from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QFrame, QVBoxLayout, QWidget

from ..layer_data import KEY, role
from ._canvas import hide_colorbar, refit_title, set_title
from ._colorbar import Legend

#: Plugin layers that hide what is under them whatever they are coloured by.
COVERING = ("dense", "domain_map", "tissue")


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
        self.on_resize = None  # called with the canvas's new width
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
            if self.on_resize is not None:
                self.on_resize(event.size().width())
        return False


class CanvasFollower:
    """Keeps the canvas's title, colour bars and legend on the selected layer of one viewer."""

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        canvas = viewer.window._qt_viewer.canvas.native
        self.legend = CanvasLegend(canvas)
        self.legend.on_resize = lambda width: refit_title(viewer, width)
        self.paused = False  # a caller that updates later (a step of its own: see select_layer)
        viewer.layers.selection.events.active.connect(self.update)
        canvas.destroyed.connect(lambda *_: viewer.layers.selection.events.active.disconnect(self.update))
        from ._glyphs import warm_glyphs
        from ._gui_steps import GuiSteps

        self.warming = GuiSteps(canvas)
        warm_glyphs(viewer, self.warming)

    def update(self, *_args) -> None:
        """Show what the selected plugin layer shows (foreign layers leave the canvas as it is)."""
        if self.paused:
            return
        layer = self.viewer.layers.selection.active
        meta = layer.metadata.get(KEY) if layer is not None and isinstance(layer.metadata, dict) else None
        if not isinstance(meta, dict) or role(layer) is None:
            return
        for other in self.viewer.layers:
            if other is not layer:
                hide_colorbar(other)
        self._uncover(layer, meta)
        if meta.get("legend") is not None:
            names, colors, counts = meta["legend"]
            hide_colorbar(layer)
            set_title(self.viewer, meta.get("legend_title") or f"{layer.name} ({len(names)})", bar=False)
            self.legend.set(names, colors, counts)
        elif meta.get("gene") is not None:
            bar = getattr(layer, "face_colorbar", None) or getattr(layer, "colorbar", None)
            if bar is not None:
                bar.visible = True
            set_title(self.viewer, meta.get("title") or str(meta["gene"]))
            self.legend.set([], [])
        else:
            set_title(self.viewer, layer.name, bar=False)
            self.legend.set([], [])

    def _uncover(self, layer, meta: dict) -> None:
        """Hide what is drawn over ``layer``'s area and would hide it: coloured layers (e.g. domains over the
        gene just selected, whole-slide tiles over spot predictions) and the tissue mask.  The canvas then
        shows what its title and colour bar say; the hidden layers stay a click (their eye) away."""
        if meta.get("gene") is None and meta.get("legend") is None:
            return
        grid = getattr(self.viewer, "grid", None)
        if grid is not None and grid.enabled:  # cells side by side share world coordinates, not the screen
            return
        index = self.viewer.layers.index(layer)
        for other in list(self.viewer.layers)[index + 1 :]:
            if other.visible and _covers(other, layer):
                other.visible = False
        if not layer.visible:  # napari refreshes a layer on every set, even to the same value
            layer.visible = True


def _covers(other, layer) -> bool:
    """Whether ``other`` (a plugin layer above ``layer``) hides it: coloured by a gene or categories, or a
    tissue mask, over a part of ``layer``'s area."""
    meta = other.metadata.get(KEY) if isinstance(other.metadata, dict) else None
    if not isinstance(meta, dict):
        return False
    coloured = meta.get("gene") is not None or meta.get("legend") is not None or role(other) in COVERING
    if not coloured:
        return False
    a, b = other.extent.world[:, -2:], layer.extent.world[:, -2:]
    return bool(np.all(np.maximum(a[0], b[0]) < np.minimum(a[1], b[1])))


_FOLLOWERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def follower_of(viewer) -> CanvasFollower | None:
    """The :class:`CanvasFollower` of ``viewer`` if one is installed (installs none)."""
    return _FOLLOWERS.get(getattr(viewer, "__wrapped__", viewer))


def follow_selection(viewer) -> CanvasFollower:
    """The :class:`CanvasFollower` of ``viewer`` (installed on first use; one per viewer, whichever
    proxy of it a widget was given)."""
    viewer = getattr(viewer, "__wrapped__", viewer)
    if viewer not in _FOLLOWERS:
        _FOLLOWERS[viewer] = CanvasFollower(viewer)
    return _FOLLOWERS[viewer]
