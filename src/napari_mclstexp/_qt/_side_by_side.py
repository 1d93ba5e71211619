"""Measured beside predicted: two grid cells, each with the slide under its spots, colours linked.

napari's grid puts ``|stride|`` consecutive layers in one cell (counted from the top of the list when the
stride is negative), so the top of the layer list becomes ``[slide twin, predicted, "predicted" title,
slide, measured, "measured" title]`` with ``stride = -3`` (measured in the first cell, predicted in the
second); other visible layers are hidden while the view is on.  Turning it off restores the layer order
and visibility exactly as they were.  The twin shares the slide's lazy arrays (no copy).  While it is on,
napari's reset view fits the spots (the tissue), not the whole slide, into each cell, and the two cells sit
side by side or one above the other, whichever shows the tissue larger on the canvas.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..layer_data import KEY, layer_adata, layers_with_role
from ._gui_steps import GuiSteps


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


@contextlib.contextmanager
def batched(viewer):
    """napari redraws its whole scene graph on every visibility change, move and grid setting (a draw each,
    ~0.1 s on a shown canvas); inside this block it does so once, at the end."""
    batch = getattr(viewer.layers, "batched_update", None)
    with batch() if batch is not None else contextlib.nullcontext():
        yield


class SideBySide:
    """Turns the measured-beside-predicted view on and off for one viewer."""

    def __init__(self, viewer, parent=None) -> None:
        self.viewer = viewer
        self.twin = None
        self._hidden: list = []
        self._linked: list = []
        self._stride = 1
        self._order: list = []
        self.titles: list = []
        self.active = False
        self._cells: list = []  # the two spots layers the camera fits while the view is on
        self._shape: tuple[int, int] = (-1, -1)
        self._fitting = False
        self._connected = False  # the grid is on and napari's reset view refits it
        self.steps = GuiSteps(parent)  # goes with its owner (a widget): no step runs after it is closed

    def enable(self, measured, predicted, then: Callable[[], object] | None = None) -> None:
        """Show ``measured`` and ``predicted`` in two cells, each over the slide; ``then`` runs once the
        view is complete.  Built in :class:`GuiSteps` steps (hiding, two titles, the slide's twin, the
        order, the grid): done in one slot, the her2st folder's view froze the window for seconds."""
        if self.active:
            self.disable()
        viewer = self.viewer
        slide = slide_for(viewer, predicted, measured)
        self._order = list(viewer.layers)
        keep = [layer for layer in (slide, measured, predicted) if layer is not None]
        self._hidden = [layer for layer in viewer.layers if layer.visible and layer not in keep]
        self.active = True

        def hide() -> None:
            with batched(viewer):
                for layer in self._hidden:
                    layer.visible = False

        def title(layer, text: str) -> None:
            self.titles.append(self._title(layer, text))

        def twin() -> None:
            self.twin = viewer.add_image(
                slide.data,
                rgb=slide.rgb,
                multiscale=slide.multiscale,
                scale=slide.scale,
                translate=slide.translate,
                units=slide.units,
                name=f"{slide.name} (beside)",
                metadata={KEY: {"role": "twin"}},
                visible=False,
            )

        def order() -> None:
            titles = self.titles
            layers = [predicted, titles[1], measured, titles[0]]
            if self.twin is not None:
                layers = [self.twin, predicted, titles[1], slide, measured, titles[0]]
            with batched(viewer):
                for layer in keep + titles:
                    layer.visible = True
                for layer in layers:  # move each to the top in turn: they end up in this order
                    viewer.layers.move(viewer.layers.index(layer), len(viewer.layers))

        def grid() -> None:
            self._stride, self._shape = viewer.grid.stride, tuple(viewer.grid.shape)
            self._cells = [measured, predicted]
            with batched(viewer):
                viewer.grid.shape = self._best_shape()
                viewer.grid.stride = -3 if self.twin is not None else -2
                viewer.grid.enabled = True
            self._link(measured, predicted)
            viewer.events.reset_view.connect(self._refit)
            self._connected = True
            self.fit()

        def show_twin() -> None:
            if self.twin is not None:
                self.twin.visible = True  # drawn last: the slide's twin is the heaviest to draw

        self.steps.add(hide, lambda: title(measured, "measured"), lambda: title(predicted, "predicted"))
        if slide is not None:
            self.steps.add(twin)
        self.steps.add(order, grid, show_twin)
        if then is not None:
            self.steps.add(then)

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
        cells = [layer for layer in self._cells if layer in self.viewer.layers]
        if not cells or self._fitting:
            return
        self._fitting = True
        try:
            self.viewer.fit_to_view(layers=cells)
        finally:
            self._fitting = False

    def _refit(self, _event=None) -> None:
        """After napari's own reset view (which fits every layer, the whole slide included)."""
        if self.active and not self._fitting:
            self.fit()

    def _title(self, layer, text: str):
        """A one-point text layer naming a grid cell, at the top-left of ``layer``'s spots."""
        corner = layer.data.min(axis=0) if len(layer.data) else [0.0, 0.0]
        return self.viewer.add_points(
            [corner],
            name=f"{layer.name} ({text} title)",
            size=0,
            scale=layer.scale,
            units=layer.units,
            text={"string": [text], "size": 14, "color": "white", "anchor": "upper_left"},
            metadata={KEY: {"role": "title"}},
        )

    def _link(self, measured, predicted) -> None:
        from napari.experimental import link_layers

        try:
            self._linked = link_layers([measured, predicted], ("opacity", "size", "visible"))
        except Exception:  # noqa: BLE001 - already linked, or napari refuses the proxies
            self._linked = []

    def disable(self) -> None:
        """Back to one view: twin removed, hidden layers shown again, grid off."""
        viewer = self.viewer
        self.steps.clear()  # a view still being built stops here
        with batched(viewer):
            if self._connected:
                viewer.events.reset_view.disconnect(self._refit)
                self._connected = False
                viewer.grid.enabled = False
                viewer.grid.stride = self._stride
                viewer.grid.shape = self._shape
            self._cells = []
            for extra in [self.twin, *self.titles]:
                if extra is not None and extra in viewer.layers:
                    viewer.layers.remove(extra)
            self.twin, self.titles = None, []
            for layer in self._hidden:
                if layer in viewer.layers:
                    layer.visible = True
            self._hidden = []
            # the order from before (bottom → top), layers added meanwhile staying on top
            before = [layer for layer in self._order if layer in viewer.layers]
            for layer in before:
                viewer.layers.move(viewer.layers.index(layer), len(viewer.layers))
            for layer in [layer for layer in viewer.layers if layer not in before]:
                viewer.layers.move(viewer.layers.index(layer), len(viewer.layers))
        self._order = []
        if self._linked:
            from napari.experimental import unlink_layers

            try:
                unlink_layers(self._linked)
            except Exception:  # noqa: BLE001 - a linked layer was deleted meanwhile
                pass
            self._linked = []
        self.active = False
