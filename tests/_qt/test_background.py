"""The viewer's work first (issue 24): the panel's background training is held while a task of the panel runs or
layer steps wait, and goes on after; its status line says why it waits."""

from __future__ import annotations

import threading

import pytest

from napari_mclstexp._qt._background import GRACE_MS
from napari_mclstexp.process_gate import ProcessGate
from napari_mclstexp.progress import Progress


def _viewer_idle(qtbot) -> None:
    """No work of an earlier test (nor its grace) holds the background tasks any more."""
    from napari_mclstexp._qt import _background

    qtbot.waitUntil(lambda: not _background.holding(), timeout=GRACE_MS + 5_000)


@pytest.fixture
def gate(qtbot):
    """A background task's gate, registered for the test (with what it was told), forgotten after."""
    from napari_mclstexp._qt import _background

    _viewer_idle(qtbot)
    gate = ProcessGate()
    gate.told = []
    _background.register(gate, gate.told.append)
    yield gate
    _background.unregister(gate)


def test_a_foreground_task_holds_the_background_training_until_it_is_finished(qtbot, gate):
    from napari_mclstexp._qt._worker import TaskPanel

    panel = TaskPanel()
    qtbot.addWidget(panel)
    go = threading.Event()
    held_while_running: list[bool] = []

    def work(token):
        go.wait(10)
        yield Progress("work", 1, 1)
        return 1

    with qtbot.waitSignal(panel.finished, timeout=10_000):
        panel.start(work, lambda value: None, description="Predict")
        held_while_running.append(gate.held)
        go.set()
    assert held_while_running == [True]
    assert gate.held  # a moment more: the paints and the next click that follow
    qtbot.waitUntil(lambda: not gate.held, timeout=GRACE_MS + 2_000)
    assert gate.told == [True, False]


def test_a_background_task_does_not_hold_itself(qtbot, gate):
    from napari_mclstexp._qt._worker import TaskPanel

    panel = TaskPanel()
    panel.background = True  # the Train widget's panel
    qtbot.addWidget(panel)

    def work(token):
        yield Progress("train", 1, 1)
        return 1

    with qtbot.waitSignal(panel.finished, timeout=10_000):
        panel.start(work, lambda value: None, description="Train")
        assert not gate.held


def test_waiting_layer_steps_hold_the_training_and_let_it_go_after_the_last(qtbot, gate):
    from napari_mclstexp._qt._gui_steps import GuiSteps

    errors: list = []
    steps = GuiSteps(on_error=errors.append)
    ran: list[bool] = []
    steps.add(lambda: ran.append(gate.held), lambda: ran.append(gate.held))
    assert gate.held
    qtbot.waitUntil(lambda: len(ran) == 2, timeout=5_000)
    assert ran == [True, True]
    assert gate.held  # the paints after the last step come first
    qtbot.waitUntil(lambda: not gate.held, timeout=GRACE_MS + 2_000)
    steps.add(lambda: 1 / 0)  # a failing step lets go too
    qtbot.waitUntil(lambda: not steps.busy and not gate.held, timeout=GRACE_MS + 2_000)
    assert len(errors) == 1


def test_a_gate_registered_while_the_viewer_works_is_held_at_once(qtbot):
    from napari_mclstexp._qt import _background

    _viewer_idle(qtbot)
    _background.hold("predict")
    gate = ProcessGate()
    try:
        _background.register(gate)
        assert gate.held
        _background.hold("layers")
        _background.release("predict")
        qtbot.wait(GRACE_MS + 200)
        assert gate.held  # the layers still hold it
        _background.release("layers")
        assert gate.held  # a moment more: the paints and the next click that follow
        qtbot.waitUntil(lambda: not gate.held, timeout=GRACE_MS + 2_000)
    finally:
        _background.release("predict")
        _background.release("layers")
        _background.unregister(gate)


def test_the_training_status_says_it_waits_for_the_viewer(qtbot):
    from napari_mclstexp._qt._worker import HELD, TaskPanel

    panel = TaskPanel()
    qtbot.addWidget(panel)
    go = threading.Event()

    def work(token):
        yield Progress("train", 1, 3)
        go.wait(10)
        yield Progress("train", 2, 3)
        return 1

    panel.background = True
    with qtbot.waitSignal(panel.finished, timeout=10_000):
        panel.start(work, lambda value: None, description="Train")
        qtbot.waitUntil(lambda: panel.last_event is not None, timeout=5_000)
        status, height = panel.status.text(), panel.sizeHint().height()
        panel.show_held(True)
        assert panel.bar.format().endswith(HELD) and panel.bar.text().endswith(HELD)
        assert panel.status.text() == status and panel.sizeHint().height() == height  # nothing re-laid out
        panel.show_held(False)
        assert panel.bar.format() == "%p%"
        go.set()
