"""Measured beside predicted: two grid cells, each with the slide under its spots, colours linked.

napari's grid puts ``|stride|`` consecutive layers in one cell (counted from the top of the list when the
stride is negative), so the top of the layer list becomes ``[slide twin, predicted, "predicted" title,
slide, measured, "measured" title]`` with ``stride = -3`` (measured in the first cell, predicted in the
second); other visible layers are hidden while the view is on.  Turning it off restores the layer order
and visibility exactly as they were.  The twin shares the slide's lazy arrays (no copy).  While it is on,
napari's reset view fits the spots (the tissue), not the whole slide, into each cell, and the two cells sit
side by side or one above the other, whichever shows the tissue larger on the canvas.

The view is built in :class:`~._gui_steps.GuiSteps` steps, one per turn of the event loop: the twin goes in
(hidden, unselected), each title goes in, the layers are put in order, the grid turns on with the two spots
layers drawn, then slide, twin and titles are shown one per step, then colours are linked.  Done
in one slot, the three layer adds, the grid's moves and the first paint of the two cells froze the window
for 1.0–1.5 s (measured on 2 loaded cores); a step costs one layer add or the grid switch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..layer_data import KEY, layer_adata, layers_with_role
from ._grid import GridView
from ._gui_steps import GuiSteps, add_quietly


def slide_for(viewer, *layers):
    """The slide layer under ``layers``' sample (same image file), else the newest slide, else ``None``."""
    from ..sample import image_path

    slides = layers_with_role(viewer, "slide")
    for layer in layers:
        adata = layer_adata(layer) if layer is not None else None
        path = image_path(adata) if adata is not None else None
        if path is None:
            continue
        for slide in slides:
            if Path(slide.metadata[KEY]["slide_path"]) == Path(path).resolve():
                return slide
    return slides[-1] if slides else None


class SideBySide:
    """Turns the measured-beside-predicted view on and off for one viewer (on the shared
    :class:`~._grid.GridView`, as small multiples and the slide grid)."""

    def __init__(self, viewer, parent=None) -> None:
        self.viewer = viewer
        self.grid = GridView(viewer)
        self.steps = GuiSteps(parent)
        self.twin = None
        self._linked: list = []
        self.titles: list = []
        self._cells: list = []  # the two spots layers the camera fits while the view is on

    @property
    def active(self) -> bool:
        """Whether the two cells are shown (or being built)."""
        return self.grid.active or self.steps.busy

    def enable(self, measured, predicted, then=None) -> None:
        """Show ``measured`` and ``predicted`` in two cells, each over the slide, in steps; ``then()`` runs
        once the view is on (e.g. colour both cells)."""
        if self.active:
            self.disable()
        slide = slide_for(self.viewer, predicted, measured)
        self._cells = [measured, predicted]
        self.titles = []
        if slide is not None:
            self.steps.add(lambda: self._add_twin(slide))
        self.steps.add(
            lambda: self._title(measured, "measured"),
            lambda: self._title(predicted, "predicted"),
            lambda: self.grid.arrange(self._order(slide), shown=self._cells),
            lambda: self._show(slide),
        )
        # then the rest of each cell, one layer per step: the grid's first paint builds a shader program
        # for every layer drawn in a cell (0.5–1 s for six on 2 loaded cores, measured); one a paint here
        self.steps.add(*(lambda i=i: self._reveal(slide, i) for i in range(4)))
        self.steps.add(lambda: self._link(measured, predicted))
        if then is not None:
            self.steps.add(then)

    def _add_twin(self, slide) -> None:
        """The slide again, for the second cell (hidden: it is drawn in the step after)."""
        kwargs = {
            "rgb": slide.rgb,
            "multiscale": slide.multiscale,
            "scale": slide.scale,
            "translate": slide.translate,
            "units": slide.units,
            "name": f"{slide.name} (beside)",
            "metadata": {KEY: {"role": "twin"}},
            "visible": False,
        }
        self.twin = add_quietly(self.viewer, (slide.data, kwargs, "image"))

    def _order(self, slide) -> list:
        """``[twin, predicted, title, slide, measured, title]`` (stride -3), without a slide the last four
        (stride -2)."""
        measured, predicted = self._cells
        order = [predicted, self.titles[1], measured, self.titles[0]]
        if slide is not None and slide in self.viewer.layers and self.twin is not None:
            order = [self.twin, predicted, self.titles[1], slide, *order[2:]]
        return order

    def _reveal(self, slide, i: int) -> None:
        """Show the ``i``-th of slide, twin and the two titles (those that exist)."""
        layers = [slide, self.twin, *self.titles]
        layer = layers[i] if i < len(layers) else None
        if layer is not None and layer in self.viewer.layers and not layer.visible:
            layer.visible = True

    def _show(self, slide) -> None:
        """The grid on (after :meth:`GridView.arrange` put the layers in order in the step before)."""
        order = self._order(slide)
        owned = self.titles + ([self.twin] if self.twin is not None else [])
        stride = -3 if len(order) == 6 else -2
        self.grid.turn_on(order, stride=stride, shape=self._best_shape(), owned=owned, fit=self._cells)

    def _tissue_extent(self) -> np.ndarray:
        """World extent (2, 2) of the spots in both cells: min and max (row, col)."""
        extents = [layer.extent.world[:, -2:] for layer in self._cells if layer in self.viewer.layers]
        if not extents:
            return np.array([[0.0, 0.0], [1.0, 1.0]])
        return np.array([np.min([e[0] for e in extents], axis=0), np.max([e[1] for e in extents], axis=0)])

    def _best_shape(self) -> tuple[int, int]:
        """(1, 2) or (2, 1): the grid in which the tissue fitted to one cell is drawn larger."""
        span = np.maximum(np.diff(self._tissue_extent(), axis=0)[0], 1e-9)
        canvas = np.asarray(self.viewer.canvas.size, float)  # (height, width) in canvas px

        def zoom(shape: tuple[int, int]) -> float:
            return float(np.min(canvas / np.asarray(shape) / span))

        return max(((1, 2), (2, 1)), key=zoom)

    def fit(self) -> None:
        """Fit the camera to the spots of both cells (with napari's default 5 % margin)."""
        self.grid.fit()

    def _title(self, layer, text: str) -> None:
        """A one-point text layer naming a grid cell, at the top-left of ``layer``'s spots (hidden, unselected:
        the grid shows it)."""
        corner = layer.data.min(axis=0) if len(layer.data) else [0.0, 0.0]
        kwargs = {
            "name": f"{layer.name} ({text} title)",
            "size": 0,
            "scale": layer.scale,
            "units": layer.units,
            "text": {"string": [text], "size": 14, "color": "white", "anchor": "upper_left"},
            "metadata": {KEY: {"role": "title"}},
            "visible": False,
        }
        self.titles.append(add_quietly(self.viewer, (np.asarray([corner]), kwargs, "points")))

    def _link(self, measured, predicted) -> None:
        from napari.experimental import link_layers

        try:
            self._linked = link_layers([measured, predicted], ("opacity", "size", "visible"))
        except Exception:  # noqa: BLE001 - already linked, or napari refuses the proxies
            self._linked = []

    def disable(self) -> None:
        """Back to one view: twin and titles removed, hidden layers shown again, order and grid as before."""
        self.steps.clear()
        if not self.grid.active:  # stopped while being built: layers added, perhaps arranged, grid not on
            for layer in [*self.titles, self.twin]:
                if layer is not None and layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
        self.grid.close()  # also undoes an arrangement whose grid never came on
        self._cells, self.twin, self.titles = [], None, []
        if self._linked:
            from napari.experimental import unlink_layers

            try:
                unlink_layers(self._linked)
            except Exception:  # noqa: BLE001 - a linked layer was deleted meanwhile
                pass
            self._linked = []
