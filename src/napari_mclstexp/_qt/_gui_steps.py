"""Heavy GUI-thread work in steps, one per turn of the event loop, so the window never freezes long.

Adding a napari layer costs the GUI thread 0.1–0.3 s (its Qt controls, vispy visuals and overlays, the
selection change), a colour bar or the canvas text overlay ~0.1 s each the first time.  Done back to
back in one slot, a her2st folder's eight layers froze the window for a second.  :class:`GuiSteps`
runs queued steps in order from a zero-interval ``QTimer``: between two steps Qt handles input,
paints, and runs every other due timer.  A chain of ``QTimer.singleShot(0, …)`` does not give that:
those are posted events, which Qt delivers ahead of timers, so two steps ran back to back (a 0.47 s
stall measured with two 0.15 s layers plus the GUI's own work between them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Any

from qtpy.QtCore import QObject, QTimer

from . import _background


class GuiSteps(QObject):
    """A FIFO of GUI-thread steps run one per event-loop turn.

    Parameters
    ----------
    parent
        Owner (a widget): the queue and its timer go with it.
    on_error
        Called with the exception when a step raises; the steps still queued are dropped.

    While steps wait, the panel's background training is held (:mod:`._background`, which lets it go on a
    moment after the viewer's last work): on few cores it otherwise made every step and its paint ~1.5× longer.
    """

    def __init__(self, parent: QObject | None = None, on_error: Callable[[BaseException], Any] | None = None) -> None:
        super().__init__(parent)
        self._queue: deque[Callable[[], Any]] = deque()
        self._on_error = on_error
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._run_one)
        key = id(self)
        self.destroyed.connect(lambda *_: _background.release(key))

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def busy(self) -> bool:
        """Whether steps are waiting."""
        return bool(self._queue)

    def add(self, *steps: Callable[[], Any]) -> None:
        """Queue ``steps`` (callables without arguments) after the ones already waiting."""
        self._queue.extend(steps)
        self._go()

    def next(self, *steps: Callable[[], Any]) -> None:
        """Queue ``steps`` ahead of the ones waiting (a step that splits its own work in two)."""
        self._queue.extendleft(reversed(steps))
        self._go()

    def clear(self) -> None:
        """Drop the steps not yet run."""
        self._queue.clear()
        self._timer.stop()
        self._let_go()

    def _go(self) -> None:
        if self._queue:
            _background.hold(id(self))
            if not self._timer.isActive():
                self._timer.start(0)

    def _let_go(self) -> None:
        if not self._queue:
            _background.release(id(self))

    def _run_one(self) -> None:
        if not self._queue:
            return
        step = self._queue.popleft()
        try:
            step()
        except Exception as err:  # noqa: BLE001 - the owner reports it; the viewer survives
            self._queue.clear()
            self._let_go()
            if self._on_error is None:
                raise
            self._on_error(err)
            return
        if self._queue:
            self._timer.start(0)
        else:
            self._let_go()


def add_quietly(viewer, layer_tuple: tuple) -> object:
    """Add one ``(data, kwargs, type)`` tuple without selecting it: napari selects every layer it adds,
    and a selection change rebuilds the layer controls' view and the canvas title and colour bar
    (a third of an add's GUI time, measured); the caller selects the layer it wants, once, later."""
    from ._common import add_layer_tuples

    with _not_selecting(viewer) as plain:
        (layer,) = add_layer_tuples(plain, [layer_tuple])
    return layer


def insert_quietly(viewer, layer) -> object:
    """``viewer.add_layer(layer)`` without selecting it (see :func:`add_quietly`)."""
    with _not_selecting(viewer) as plain:
        return plain.add_layer(layer)


@contextmanager
def _not_selecting(viewer):
    viewer = getattr(viewer, "__wrapped__", viewer)  # a plugin's proxy warns on private attributes
    layers = viewer.layers
    before = getattr(layers, "_activate_on_insert", None)
    if before is not None:
        layers._activate_on_insert = False
    try:
        yield viewer
    finally:
        if before is not None:
            layers._activate_on_insert = before


def select_layer(viewer, layer, steps: GuiSteps | None = None) -> None:
    """Select only ``layer`` (as napari does with a layer it adds), if it is still in the viewer; with
    ``steps``, the canvas title and colour bar follow it in the next step (one paint each, not both in
    one: together 0.3–0.8 s on 2 loaded cores, measured)."""
    from ._canvas_follow import follower_of

    if layer not in viewer.layers:
        return
    follower = follower_of(viewer) if steps is not None else None
    if follower is None:
        viewer.layers.selection.active = layer
        return
    follower.paused = True
    try:
        viewer.layers.selection.active = layer
    finally:
        follower.paused = False
    steps.next(follower.update)


def queue_layers(steps: GuiSteps, viewer, tuples: Iterable[tuple], added: list) -> None:
    """Queue layer tuples as steps: each goes in hidden and unselected (:func:`add_quietly`), a visible
    one is drawn (sliced, its texture or vertices sent to vispy) in the step after, and the last one is
    selected in a step of its own (the canvas title and colour bar follow it), as napari selects every
    layer it adds.  ``added`` receives the layers as they go in."""

    def add(layer_tuple: tuple) -> None:
        data, kwargs, layer_type = layer_tuple
        layer = add_quietly(viewer, (data, {**kwargs, "visible": False}, layer_type))
        added.append(layer)
        if kwargs.get("visible", True):
            steps.next(lambda: setattr(layer, "visible", True))

    tuples = list(tuples)
    steps.add(*(lambda t=t: add(t) for t in tuples))
    if tuples:
        steps.add(lambda: added and select_layer(viewer, added[-1], steps))
