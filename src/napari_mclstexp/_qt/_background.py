"""The viewer's work first: the panel's background training waits while a task of the panel runs or layers go in.

Every running background task (the panel's training, in a worker process) registers its
:class:`~napari_mclstexp.process_gate.ProcessGate`; every foreground activity (a :class:`~._worker.TaskPanel`
running a task, a :class:`~._gui_steps.GuiSteps` queue with steps waiting) holds all gates from its start to its
end, and they go on :data:`GRACE_MS` after the last such activity ended (the paints and the next click that
follow; no stop and go between the steps of one action).  Measured on 2 cores during the panel's training: a
lower scheduling priority alone left the GUI gaps of predicting at spots ~50 % longer than on a quiet machine;
with the training held they were back near that size.  GUI thread only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from qtpy.QtCore import QTimer

from ..process_gate import ProcessGate

#: How long the background tasks stay held after the viewer's last foreground work ended.
GRACE_MS = 1000
#: The one key the viewer holds every gate with.
VIEWER = "viewer"

_GATES: dict[ProcessGate, Callable[[bool], None] | None] = {}
_HOLDERS: set[Hashable] = set()
_GRACE: list[QTimer | None] = [None]
#: Called (each in an event-loop turn of its own) when the viewer's last foreground work ended.
WORK_ENDED: list[Callable[[], object]] = []


def _grace() -> QTimer:
    if _GRACE[0] is None:
        timer = QTimer()
        timer.setSingleShot(True)
        timer.setInterval(GRACE_MS)
        timer.timeout.connect(_let_go)
        _GRACE[0] = timer
    return _GRACE[0]


def holding() -> bool:
    """Whether the viewer's work holds the background tasks now (its grace after the last work included)."""
    return bool(_HOLDERS) or (_GRACE[0] is not None and _GRACE[0].isActive())


def register(gate: ProcessGate, on_change: Callable[[bool], None] | None = None) -> None:
    """A background task's ``gate``: held while the viewer works (at once when it does now); ``on_change`` is
    told ``True`` when the task is held, ``False`` when it goes on."""
    _GATES[gate] = on_change
    if holding():
        gate.hold(VIEWER)
        if on_change is not None:
            on_change(True)


def unregister(gate: ProcessGate) -> None:
    """The background task ended: forget (and let go) its gate."""
    _GATES.pop(gate, None)
    gate.release(VIEWER)


def hold(key: Hashable) -> None:
    """Foreground work ``key`` started: hold every background task (keyed: holding twice holds once)."""
    was = holding()
    _HOLDERS.add(key)
    if _GRACE[0] is not None:
        _GRACE[0].stop()
    if not was:
        for gate, on_change in list(_GATES.items()):
            gate.hold(VIEWER)
            if on_change is not None:
                on_change(True)


def release(key: Hashable) -> None:
    """Foreground work ``key`` ended; the background tasks go on :data:`GRACE_MS` after the last one ended."""
    if key not in _HOLDERS:
        return
    _HOLDERS.discard(key)
    if not _HOLDERS:
        _grace().start()
        for call in WORK_ENDED:
            QTimer.singleShot(0, call)


def _let_go() -> None:
    if _HOLDERS:
        return
    for gate, on_change in list(_GATES.items()):
        gate.release(VIEWER)
        if on_change is not None:
            on_change(False)
