"""One grid mechanism for every view of several cells (small multiples, the slide grid): napari's grid
mode with one camera, so pan and zoom are linked across cells.

:class:`GridView` shows the given layers (bottom → top; with ``stride`` *s* each run of *s* layers
shares a cell), hides every other visible layer, fits the camera to the cells' content (also after
napari's own reset view), and on :meth:`~GridView.close` removes the layers it was told it owns and
puts the viewer back as it was: visibility, layer order, grid settings.
"""

from __future__ import annotations

import math


def grid_shape(n: int) -> tuple[int, int]:
    """``(rows, cols)`` of a near-square grid of ``n`` cells (wider than tall)."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return max(1, math.ceil(n / cols)), cols


class ResetFit:
    """napari's reset view (its home button) fitting chosen layers instead of the whole scene, while on;
    shared by the grid views and side by side."""

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self.layers: list = []
        self._on = False
        self._fitting = False

    def start(self, layers: list) -> None:
        """Fit ``layers`` now and on every reset view until :meth:`stop`."""
        self.layers = list(layers)
        if not self._on:
            self.viewer.events.reset_view.connect(self._refit)
            self._on = True
        self.fit()

    def stop(self) -> None:
        """napari's own reset view again."""
        if self._on:
            self.viewer.events.reset_view.disconnect(self._refit)
        self._on, self.layers = False, []

    def fit(self) -> None:
        """Fit the camera to the layers still in the viewer (napari's default 5 % margin)."""
        layers = [layer for layer in self.layers if layer in self.viewer.layers]
        if not layers or self._fitting:
            return
        self._fitting = True  # napari's fit emits reset_view, which would refit
        try:
            self.viewer.fit_to_view(layers=layers)
        finally:
            self._fitting = False

    def _refit(self, _event=None) -> None:
        if self._on:
            self.fit()


class GridView:
    """napari's grid mode for one viewer, turned on with chosen layers and off again cleanly."""

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self.active = False
        self.owned: list = []  # layers this view made (removed on close)
        self._reset = ResetFit(viewer)
        self._hidden: list = []
        self._order: list = []
        self._saved: tuple = ()

    def show(self, layers: list, *, stride: int = 1, shape=None, owned=(), fit=None) -> None:
        """Show ``layers`` (bottom → top) in a grid; ``owned`` are removed on :meth:`close`; the camera
        fits ``fit`` (default: every layer shown).  :meth:`arrange` then :meth:`turn_on`, which a caller
        may also run in two turns of the event loop (each is followed by a paint)."""
        self.arrange(layers)
        self.turn_on(layers, stride=stride, shape=shape, owned=owned, fit=fit)

    def arrange(self, layers: list, shown: list | None = None) -> None:
        """Move ``layers`` to the top, show ``shown`` of them (default all) and hide every other visible
        layer (shown again by :meth:`close`: a caller may show the rest of ``layers`` step by step)."""
        if self.active:
            self.close()
        viewer = self.viewer
        shown = list(layers) if shown is None else list(shown)
        self._order = list(viewer.layers)
        self._hidden = [layer for layer in viewer.layers if layer.visible and layer not in shown]
        for layer in self._hidden:
            layer.visible = False
        for layer in shown:  # every change redraws napari's overlays: change only what differs
            if not layer.visible:
                layer.visible = True
        if list(viewer.layers)[-len(layers) :] != list(layers):  # (napari's move_multiple misorders them)
            for layer in layers:
                viewer.layers.move(viewer.layers.index(layer), len(viewer.layers))

    def turn_on(self, layers: list, *, stride: int = 1, shape=None, owned=(), fit=None) -> None:
        """napari's grid on, ``|stride|`` layers a cell, the camera fitted (after :meth:`arrange`)."""
        viewer = self.viewer
        grid = viewer.grid
        self._saved = (grid.stride, tuple(grid.shape))
        self.owned = list(owned)
        grid.shape = tuple(shape) if shape is not None else grid_shape(math.ceil(len(layers) / abs(stride)))
        grid.stride = stride
        grid.enabled = True
        self.active = True
        self._reset.start(fit if fit is not None else layers)

    def fit(self) -> None:
        """Fit the camera to the cells' content (napari's default 5 % margin)."""
        self._reset.fit()

    def close(self) -> None:
        """Back to one view: owned layers removed, hidden layers shown, order and grid as before."""
        if not self.active and not self._order:  # neither on nor arranged
            return
        viewer = self.viewer
        if self.active:
            self._reset.stop()
            viewer.grid.enabled = False
            viewer.grid.stride, viewer.grid.shape = self._saved
        for layer in self.owned:
            if layer in viewer.layers:
                viewer.layers.remove(layer)
        for layer in self._hidden:
            if layer in viewer.layers:
                layer.visible = True
        before = [layer for layer in self._order if layer in viewer.layers]
        for layer in before + [layer for layer in viewer.layers if layer not in before]:
            viewer.layers.move(viewer.layers.index(layer), len(viewer.layers))
        self.owned, self._hidden, self._order = [], [], []
        self.active = False
