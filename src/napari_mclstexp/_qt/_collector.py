"""Shorter pauses of Python's cycle collector in the viewer: imported modules sit out its full collections.

CPython's full (oldest-generation) collection walks every object it tracks, in one piece.  In a viewer with the
panel most of them belong to imported modules, which never die (napari ~210,000; torch, torchvision, anndata and
scikit-learn ~410,000 more).  Full collections come from the collector's own thresholds (120–190 ms each during
the panel's training on 2 cores: the longest gaps of loading the folder again and of predicting at spots and over
the whole slide each held one) and from napari, which runs ``gc.collect()`` for every layer it removes from the
canvas (turning side by side off removed three: three collections of ~500 ms, a 1.5–1.8 s freeze).
``benchmarks/stalls.py`` records each action's collector pauses.

So when new modules were imported, one full collection runs and its survivors are moved to the permanent
generation (:func:`gc.freeze`): later full collections walk only what was made since.  It runs right after the
viewer's foreground work that imported them ended (:data:`._background.WORK_ENDED`: that action's own pause, not
one that meets the user's next click), or, for a background task's imports (the panel's training), at the next
check (every :data:`CHECK_MS`) that finds the viewer idle.

Frozen objects are never collected.  The layers alive at a freeze are remembered: one that leaves its viewer
with :data:`BIG_BYTES` or more of data in memory undoes the freeze (:func:`gc.unfreeze`; the next full collection
walks and frees everything, as without this module) and the next end of the viewer's work freezes again; a
smaller one (spots, titles, lazily read slides: ~22,000 small objects each) stays in memory until the freeze is
undone, so that removing it does not cost a walk of the whole heap.  A destroyed widget of the plugin (its viewer
closed) undoes it too; then only new imports freeze again.  GUI thread only.
"""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
from qtpy.QtCore import QTimer

from . import _background

#: New modules since the last freeze that make the next freeze due.
NEW_MODULES = 20
#: How often an idle viewer is checked for a freeze that is due.
CHECK_MS = 2000
#: A layer frozen in that leaves its viewer with this much data in memory undoes the freeze.
BIG_BYTES = 64 * 2**20

_STATE = {"modules": 0, "thawed": False}
_FROZEN_LAYERS: weakref.WeakSet = weakref.WeakSet()
_VIEWERS: weakref.WeakSet = weakref.WeakSet()
_TIMER: list[QTimer] = []


def frozen() -> int:
    """How many objects the full collections skip now."""
    return gc.get_freeze_count()


def freeze_if_due() -> bool:
    """At an idle moment: after new imports (or a thaw), collect once and freeze the survivors; whether it did."""
    if not _VIEWERS:
        return False
    due = _STATE["thawed"] or len(sys.modules) >= _STATE["modules"] + NEW_MODULES
    if not due:
        return False
    gc.collect()
    gc.freeze()
    _STATE["modules"], _STATE["thawed"] = len(sys.modules), False
    _FROZEN_LAYERS.clear()
    for viewer in _VIEWERS:
        _FROZEN_LAYERS.update(viewer.layers)
    return True


def _check() -> None:
    if not _background.holding():
        freeze_if_due()


def thaw(*_args, again: bool = False) -> None:
    """Undo the freeze: the next full collection walks (and frees what died among) every object; ``again``:
    the next end of the viewer's work freezes anew (else the next new imports do)."""
    if gc.get_freeze_count():
        gc.unfreeze()
        _STATE["thawed"] = again
    _FROZEN_LAYERS.clear()


def _in_memory_bytes(layer) -> int:
    """Bytes of ``layer``'s data held in numpy arrays (lazy arrays, read on demand, count nothing)."""
    data = layer.data if isinstance(layer.data, (list, tuple)) else [layer.data]
    return sum(array.nbytes for array in data if isinstance(array, np.ndarray))


def _on_removed(event) -> None:
    if event.value in _FROZEN_LAYERS and _in_memory_bytes(event.value) >= BIG_BYTES:
        thaw(again=True)


def watch(widget, viewer) -> None:
    """Count ``viewer`` in (its layers remembered at each freeze, a frozen one removed thaws) and thaw when
    ``widget`` (a ``QWidget`` of the plugin) is destroyed."""
    if not _TIMER:
        _TIMER.append(QTimer())
        _TIMER[0].setInterval(CHECK_MS)
        _TIMER[0].timeout.connect(_check)
        _TIMER[0].start()
        _background.WORK_ENDED.append(freeze_if_due)
    if viewer not in _VIEWERS:
        _VIEWERS.add(viewer)
        viewer.layers.events.removed.connect(_on_removed)
    widget.destroyed.connect(thaw)
