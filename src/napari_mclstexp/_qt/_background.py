"""The viewer's work first: the panel's background training waits while a task of the panel runs or layers go in.

Every running background task (the panel's training, in a worker process) registers its
:class:`~napari_mclstexp.process_gate.ProcessGate`; every foreground activity (a :class:`~._worker.TaskPanel`
running a task, a :class:`~._gui_steps.GuiSteps` queue with steps waiting) holds all gates from its start to its
end.  Measured on 2 cores during the panel's training: a lower scheduling priority alone left the GUI gaps of
predicting at spots ~50 % longer than on a quiet machine; with the training held they were back at that size.
GUI thread only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from ..process_gate import ProcessGate

_GATES: dict[ProcessGate, Callable[[bool], None] | None] = {}
_HOLDERS: set[Hashable] = set()


def register(gate: ProcessGate, on_change: Callable[[bool], None] | None = None) -> None:
    """A background task's ``gate``: held while the viewer works (at once when it does now); ``on_change`` is
    told ``True`` when the task is held, ``False`` when it goes on."""
    _GATES[gate] = on_change
    for key in _HOLDERS:
        gate.hold(key)
    if _HOLDERS and on_change is not None:
        on_change(True)


def unregister(gate: ProcessGate) -> None:
    """The background task ended: forget (and let go) its gate."""
    _GATES.pop(gate, None)
    for key in list(_HOLDERS):
        gate.release(key)


def hold(key: Hashable) -> None:
    """Foreground work ``key`` started: hold every background task (keyed: holding twice holds once)."""
    first = not _HOLDERS
    _HOLDERS.add(key)
    for gate, on_change in list(_GATES.items()):
        gate.hold(key)
        if first and on_change is not None:
            on_change(True)


def release(key: Hashable) -> None:
    """Foreground work ``key`` ended; the background tasks go on when no other work holds them."""
    if key not in _HOLDERS:
        return
    _HOLDERS.discard(key)
    for gate, on_change in list(_GATES.items()):
        gate.release(key)
        if not _HOLDERS and on_change is not None:
            on_change(False)


def holding() -> bool:
    """Whether foreground work holds the background tasks now."""
    return bool(_HOLDERS)
