"""Shorter pauses of Python's cycle collector in the viewer: what lives on sits out its full collections.

CPython's full (oldest-generation) collection walks every object it tracks, in one piece.  In a viewer with the
panel most of them belong to imported modules, which never die (napari ~210,000; torch, torchvision, anndata and
scikit-learn ~410,000 more), and to layers.  Full collections come from the collector's own thresholds (120–190 ms
each during the panel's training on 2 cores: the longest gaps of loading the folder again and of predicting at
spots and over the whole slide each held one) and from napari, which runs ``gc.collect()`` for every layer it
removes from the canvas (turning side by side off removed three: three collections of ~350–500 ms, a 1.1–1.8 s
freeze).  ``benchmarks/stalls.py`` records each action's collector pauses.

So when the plugin's first widget opens and at the end of each piece of the viewer's foreground work
(:data:`._background.WORK_ENDED`: a panel task and its layer steps, in an event-loop turn of its own), one full
collection walks what was made since the last one and its survivors are moved to the permanent generation
(:func:`gc.freeze`): a few tens of ms after the first, and every later full collection walks only what was made
after.  When a task starts (:class:`~._worker.TaskPanel`), everything is frozen as it is, without a collection (a
walk at the click cost up to 150 ms after torch's import): the task's full collections walk only its own
allocations.  A background task's imports (the panel's training) are frozen at the next check (every
:data:`CHECK_MS`) that finds the viewer idle.

Frozen objects are never collected.  The layers alive at a freeze are remembered; when one that owns
:data:`BIG_BYTES` or more of data in memory leaves its viewer, or :data:`LEFT_LAYERS` smaller ones have, the next
end of work first undoes the freeze (:func:`gc.unfreeze`), so that its collection walks and frees everything,
once (napari's collections for the removed layers in between walk only the unfrozen part).  Until then a small
layer that left (spots, titles, lazily read or cropped slides: ~22,000 small objects each) stays in memory.  A
destroyed widget of the plugin (its viewer closed) undoes the freeze at once.  GUI thread only.
"""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
from qtpy.QtCore import QTimer

from . import _background

#: New modules that make the idle check freeze (the imports of a background task).
NEW_MODULES = 20
#: How often an idle viewer is checked for new modules (or layers that left while it was idle).
CHECK_MS = 2000
#: A layer frozen in that leaves its viewer owning this much data in memory makes the next freeze walk everything.
BIG_BYTES = 64 * 2**20
#: So many smaller layers frozen in that left make the next freeze walk everything.
LEFT_LAYERS = 16

_STATE = {"modules": 0, "left": 0, "refreeze": False}
_FROZEN_LAYERS: weakref.WeakSet = weakref.WeakSet()
_VIEWERS: weakref.WeakSet = weakref.WeakSet()
_TIMER: list[QTimer] = []


def frozen() -> int:
    """How many objects the full collections skip now."""
    return gc.get_freeze_count()


def freeze(full: bool = True) -> None:
    """One full collection of what is not frozen (of everything, after big or many frozen layers left: they are
    freed), its survivors frozen, the layers alive remembered.  ``full=False`` (a task starts): no collection,
    everything frozen as it is (what died since the last freeze and was not collected yet, with the rest)."""
    if not _VIEWERS:
        return
    if full:
        if _STATE["refreeze"]:
            thaw()
        gc.collect()
    gc.freeze()
    _STATE["modules"] = len(sys.modules)
    for viewer in _VIEWERS:
        _FROZEN_LAYERS.update(viewer.layers)


def _check() -> None:
    if not _background.holding() and (_STATE["refreeze"] or len(sys.modules) >= _STATE["modules"] + NEW_MODULES):
        freeze()


def thaw(*_args) -> None:
    """Undo the freeze now: the next full collection walks (and frees what died among) every object."""
    gc.unfreeze()
    _FROZEN_LAYERS.clear()
    _STATE.update(left=0, refreeze=False)


def _owned_bytes(layer) -> int:
    """Bytes of ``layer``'s data in numpy arrays that own their memory (not views of another layer's arrays;
    lazy arrays, read on demand, count nothing)."""
    data = layer.data if isinstance(layer.data, (list, tuple)) else [layer.data]
    return sum(array.nbytes for array in data if isinstance(array, np.ndarray) and array.base is None)


def _on_removed(event) -> None:
    if event.value not in _FROZEN_LAYERS:
        return
    _STATE["left"] += 1
    if _owned_bytes(event.value) >= BIG_BYTES or _STATE["left"] >= LEFT_LAYERS:
        _STATE["refreeze"] = True  # at the end of this work: one walk of everything, not one per removed layer


def watch(widget, viewer) -> None:
    """Count ``viewer`` in (its layers remembered at each freeze) and thaw when ``widget`` (a ``QWidget`` of the
    plugin) is destroyed."""
    if not _TIMER:
        _TIMER.append(QTimer())
        _TIMER[0].setInterval(CHECK_MS)
        _TIMER[0].timeout.connect(_check)
        _TIMER[0].start()
        _background.WORK_ENDED.append(freeze)
        QTimer.singleShot(0, freeze)  # the first walk of the heap when the first widget opened, not in a task
    if viewer not in _VIEWERS:
        _VIEWERS.add(viewer)
        viewer.layers.events.removed.connect(_on_removed)
    widget.destroyed.connect(thaw)
