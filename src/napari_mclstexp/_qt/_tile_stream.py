"""The streaming layer of a whole-slide prediction: tiles arrive from the worker (:class:`TileBuffer`)
and are painted, one value per tile, into an Image layer on the engine's tile grid."""

from __future__ import annotations

import threading
import time

import numpy as np

from ..layer_data import KEY, section_of, world_scale, world_units
from ..progress import CancelToken

#: Seconds the worker waits at most for the GUI to put in the tissue and streaming layers.
GRID_WAIT_S = 10.0


class TileBuffer:
    """Thread-safe inbox for tiles the engine streams from the worker (``on_tile``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, xy: np.ndarray, prediction: np.ndarray) -> None:
        """The engine's ``on_tile``: tile centres ``(B, 2)`` (full-res px) and predictions ``(B, G)``."""
        with self._lock:
            self._items.append((np.asarray(xy), np.asarray(prediction)))

    def drain(self) -> list[tuple[np.ndarray, np.ndarray]]:
        with self._lock:
            items, self._items = self._items, []
        return items


def wait_for_gui(ready: threading.Event, token: CancelToken | None, timeout: float = GRID_WAIT_S) -> None:
    """(Worker thread) Wait until the GUI sets ``ready`` (at most ``timeout`` s; Cancel still stops).

    A whole-slide run announces its grid, then waits here while the GUI adds the tissue and streaming
    layers (its heaviest work of the run): they then have both CPU cores instead of competing with the
    model being built and the first tiles (a 0.4 s stall otherwise, 0.15 s alone, on 2 cores)."""
    deadline = time.monotonic() + timeout
    while not ready.wait(0.05) and time.monotonic() < deadline:
        if token is not None:
            token.raise_if_cancelled()


def add_stream_layer(viewer, slide_layer, grid):
    """An Image layer of NaNs, one pixel per tile of ``grid`` (a
    :class:`~napari_mclstexp.predict.slide.TileGrid`), over ``slide_layer``; tiles fill it in.  It goes in
    hidden and unselected (:func:`~._gui_steps.add_quietly`): the caller shows it in a later step."""
    from ._gui_steps import add_quietly

    meta = slide_layer.metadata[KEY]
    px = np.asarray(world_scale(meta.get("mpp")))
    name = f"{section_of(slide_layer.name)} predicted (streaming)"
    kwargs = {
        "name": name,
        "colormap": "viridis",
        "opacity": 0.7,
        "scale": px * grid.step_px,
        "translate": px * np.asarray(grid.origin_xy[::-1]),
        "contrast_limits": (0, 1),
        "blending": "translucent",
        "units": world_units(meta.get("mpp")),
        "visible": False,
    }
    return add_quietly(viewer, (np.full(grid.shape, np.nan, np.float32), kwargs, "image"))


def paint_tiles(layer, grid, items: list[tuple[np.ndarray, np.ndarray]], gene_index: int) -> int:
    """Write gene ``gene_index`` of the tiles ``items`` (``(xy, predictions)`` pairs) into the streaming
    ``layer``, stretch its contrast to the values so far and redraw; returns the number of tiles."""
    image = layer.data
    for xy, values in items:
        cols, rows = grid.indices(xy).T
        ok = (rows >= 0) & (rows < image.shape[0]) & (cols >= 0) & (cols < image.shape[1])
        image[rows[ok], cols[ok]] = np.asarray(values, np.float32).reshape(len(xy), -1)[ok, gene_index]
    finite = image[np.isfinite(image)]
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        layer.contrast_limits = (lo, hi if hi > lo else lo + 1)
    layer.refresh()
    return sum(len(xy) for xy, _ in items)


def stream_gene_index(bundle) -> int:
    """(Worker) The gene a whole-slide run streams: the bundle's most reliable one."""
    from ..analysis.reliability import best_gene, reliability_map

    genes = list(map(str, bundle.genes))
    return genes.index(best_gene(genes, reliability_map(bundle.metadata.get("reliability"))))
