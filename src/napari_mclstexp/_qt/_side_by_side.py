"""Measured beside predicted: the predicted spots moved beside the measured ones in the one view, each
over the slide, colours linked.

The predicted spots' layer is translated by the tissue's width (or height, whichever shows the tissue
larger on the canvas) plus a 10 % gap, over a twin of the slide cut to the tissue (a lazy crop of its
levels: nothing is read before it is drawn, nothing covers the slide's own tissue); each half is titled;
other visible layers are hidden; napari's reset view fits both halves.  Turning it off restores the
translation, visibility and layer order exactly as they were.  While it is on, the two halves share one
camera (pan and zoom are linked by construction); a region is drawn with the view off (Draw region turns
it off), so that its outline maps to the spots it covers.

The view is built in :class:`~._gui_steps.GuiSteps` steps, one per turn of the event loop (the twin goes
in hidden and unselected, goes under the predictions, each title goes in, the predictions move and the
camera fits, then twin and titles are shown one per step, then colours are linked).  It used napari's grid
before: the grid's switch built two vispy view boxes and recompiled the shader of every layer drawn in a
cell, 0.47–0.55 s of one step on 2 quiet cores (``benchmarks/stalls.py``); a translation changes a
transform's values, not the shaders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..layer_data import KEY, layer_adata, layers_with_role
from ._grid import ResetFit
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


#: Gap between the two halves, as a fraction of the tissue's extent along the axis they are laid out on.
GAP = 0.1
#: A half's title sits this fraction of the tissue's height below its spots (in the gap or the bottom margin).
TITLE_DROP = 0.02


class SideBySide:
    """Turns the measured-beside-predicted view on and off for one viewer."""

    def __init__(self, viewer, parent=None) -> None:
        self.viewer = viewer
        self.steps = GuiSteps(parent)
        self.twin = None
        self.titles: list = []
        self.offset = np.zeros(2)  # world (row, col) shift of the predicted half
        self._linked: list = []
        self._cells: list = []  # [measured, predicted]
        self._hidden: list = []
        self._shifted = None  # (layer, its translate before) while the predictions are moved
        self._shown = False
        self._reset = ResetFit(viewer)  # napari's home button fits both halves while the view is on

    @property
    def active(self) -> bool:
        """Whether the two halves are shown (or being built)."""
        return self._shown or self.steps.busy

    def enable(self, measured, predicted, then=None) -> None:
        """Show ``measured`` and ``predicted`` side by side, each over the slide, in steps; ``then()`` runs
        once the view is on (e.g. colour both halves)."""
        if self.active:
            self.disable()
        slide = slide_for(self.viewer, predicted, measured)
        self._cells = [measured, predicted]
        self.titles = []
        self.offset = self._offset()
        if slide is not None:
            self.steps.add(lambda: self._add_twin(slide), self._place_twin)
        self.steps.add(
            lambda: self._title(measured, "measured", np.zeros(2)),
            lambda: self._title(predicted, "predicted", self.offset),
            lambda: self._show(slide),
        )
        self.steps.add(*(lambda i=i: self._reveal(i) for i in range(3)))
        self.steps.add(lambda: self._link(measured, predicted))
        if then is not None:
            self.steps.add(then)

    # --- layout --------------------------------------------------------------------------------------
    def _tissue_extent(self) -> np.ndarray:
        """World extent (2, 2) of the spots of both halves (before the move): min and max (row, col)."""
        extents = [layer.extent.world[:, -2:] for layer in self._cells if layer in self.viewer.layers]
        if not extents:
            return np.array([[0.0, 0.0], [1.0, 1.0]])
        return np.array([np.min([e[0] for e in extents], axis=0), np.max([e[1] for e in extents], axis=0)])

    def _offset(self) -> np.ndarray:
        """The predicted half's shift: beside (columns) or below (rows), whichever draws the tissue larger."""
        span = np.maximum(np.diff(self._tissue_extent(), axis=0)[0], 1e-9)
        canvas = np.asarray(self.viewer.canvas.size, float)  # (height, width) in canvas px
        steps = [np.array([0.0, span[1] * (1 + GAP)]), np.array([span[0] * (1 + GAP), 0.0])]
        return max(steps, key=lambda step: float(np.min(canvas / (span + step))))

    def _add_twin(self, slide) -> None:
        """The slide cut to the tissue (plus half the gap), moved with the predictions (hidden: it is
        drawn in a later step)."""
        from ..layer_data.crop import crop_levels

        levels = list(slide.data) if slide.multiscale else [slide.data]
        scale, translate = np.asarray(slide.scale)[-2:], np.asarray(slide.translate)[-2:]
        extent = self._tissue_extent()
        margin = np.diff(extent, axis=0)[0] * GAP / 2
        box = ((extent - translate) + np.array([-margin, margin])) / scale  # level-0 px
        cut = crop_levels(levels, tuple(box[:, 0]), tuple(box[:, 1]))
        origin = np.array([np.floor(box[0, 0]), np.floor(box[0, 1])]).clip(0)
        kwargs = {
            "rgb": slide.rgb,
            "multiscale": len(cut) > 1,
            "scale": slide.scale,
            "translate": translate + origin * scale + self.offset,
            "units": slide.units,
            "name": f"{slide.name} (beside)",
            "metadata": {KEY: {"role": "twin"}},
            "visible": False,
        }
        self.twin = add_quietly(self.viewer, (cut if len(cut) > 1 else cut[0], kwargs, "image"))

    def _place_twin(self) -> None:
        """The twin just under the predictions (drawn over the slide, under the spots)."""
        layers = self.viewer.layers
        predicted = self._cells[1]
        if self.twin is not None and self.twin in layers and predicted in layers:
            at, to = layers.index(self.twin), layers.index(predicted)
            if at > to:
                layers.move(at, to)

    def _title(self, layer, text: str, offset: np.ndarray) -> None:
        """A one-point text layer naming a half, just below the bottom-left of ``layer``'s spots (hidden,
        unselected).  Not above them: the top left of the first half is where the canvas's gene title is."""
        data = np.asarray(layer.data, float)[:, -2:]
        if len(data):
            low, high = data.min(axis=0), data.max(axis=0)
            corner = [high[0] + TITLE_DROP * (high[0] - low[0]), low[1]]
        else:
            corner = [0.0, 0.0]
        kwargs = {
            "name": f"{layer.name} ({text} title)",
            "size": 0,
            "scale": layer.scale,
            "translate": np.asarray(layer.translate)[-2:] + offset,
            "units": layer.units,
            "text": {"string": [text], "size": 14, "color": "white", "anchor": "upper_left"},
            "metadata": {KEY: {"role": "title"}},
            "visible": False,
        }
        self.titles.append(add_quietly(self.viewer, (np.asarray([corner]), kwargs, "points")))

    def _show(self, slide) -> None:
        """Hide what else is shown, move the predictions beside the measured spots, fit both halves."""
        keep = [slide, self.twin, *self.titles, *self._cells]
        self._hidden = [layer for layer in self.viewer.layers if layer.visible and layer not in keep]
        for layer in self._hidden:
            layer.visible = False
        predicted = self._cells[1]
        before = np.asarray(predicted.translate, float).copy()
        moved = before.copy()
        moved[-2:] += self.offset
        predicted.translate = moved
        self._shifted = (predicted, before)
        self._shown = True
        self._reset.start([*self._cells, *self.titles])

    def _reveal(self, i: int) -> None:
        """Show the ``i``-th of twin and the two titles (those that exist)."""
        layers = [self.twin, *self.titles]
        layer = layers[i] if i < len(layers) else None
        if layer is not None and layer in self.viewer.layers and not layer.visible:
            layer.visible = True

    def fit(self) -> None:
        """Fit the camera to the spots of both halves and their titles (with napari's default 5 % margin)."""
        self._reset.fit()

    def _link(self, measured, predicted) -> None:
        from napari.experimental import link_layers

        try:
            self._linked = link_layers([measured, predicted], ("opacity", "size", "visible"))
        except Exception:  # noqa: BLE001 - already linked, or napari refuses the proxies
            self._linked = []

    def disable(self) -> None:
        """Back to one view: twin and titles removed, predictions back in place, hidden layers shown."""
        self.steps.clear()
        viewer = self.viewer
        self._reset.stop()
        if self._shifted is not None:
            layer, before = self._shifted
            if layer in viewer.layers:
                layer.translate = before
        for layer in [*self.titles, self.twin]:
            if layer is not None and layer in viewer.layers:
                viewer.layers.remove(layer)
        for layer in self._hidden:
            if layer in viewer.layers:
                layer.visible = True
        self._cells, self.twin, self.titles, self._hidden = [], None, [], []
        self._shifted, self._shown = None, False
        if self._linked:
            from napari.experimental import unlink_layers

            try:
                unlink_layers(self._linked)
            except Exception:  # noqa: BLE001 - a linked layer was deleted meanwhile
                pass
            self._linked = []
