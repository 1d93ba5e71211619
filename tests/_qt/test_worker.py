"""TaskPanel: the toast of a cancelled run does not outlive the next successful run."""

from __future__ import annotations

from napari._qt.dialogs.qt_notification import NapariQtNotification

from .conftest import TINY


def _toasts() -> list[str]:
    return [toast.message.text() for toast in NapariQtNotification._instances]


def test_cancelled_toast_is_cleared_by_a_successful_retrain(
    make_napari_viewer, qtbot, synthetic_samples, tmp_path, monkeypatch
):
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import spots_layer

    # a toast stays until closed when the window is not active or another toast stopped its timer
    monkeypatch.setattr(NapariQtNotification, "DISMISS_AFTER", 0)
    viewer = make_napari_viewer(show=True)
    add_layer_tuples(viewer, [spots_layer(a) for a in synthetic_samples[:2]])
    widget = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Train")[1]
    widget.config_overrides = dict(TINY)
    widget.out.setText(str(tmp_path / "model.mclst"))

    widget.epochs.setValue(200)
    assert widget.train() is not None
    qtbot.waitUntil(
        lambda: widget.task.last_event is not None and widget.task.last_event.stage == "train", timeout=60_000
    )
    with qtbot.waitSignal(widget.task.finished, timeout=60_000):
        widget.task.cancel_button.click()
    qtbot.waitUntil(lambda: "Train cancelled." in _toasts(), timeout=5_000)

    widget.epochs.setValue(1)
    with qtbot.waitSignal(widget.task.finished, timeout=120_000) as blocker:
        assert widget.train() is not None
    assert blocker.args[0] is not None
    qtbot.wait(50)
    assert "Train cancelled." not in _toasts()
    assert widget.task.status.text() == "Train: done"


def test_a_task_runs_below_the_gui_thread(qtbot):
    """The worker (and the threads it starts, such as the descriptor loops that run without the GIL) yields the CPU
    to the GUI thread: on 2 cores, with training in the background, predicting at spots had doubled its longest GUI
    gap once the descriptors stopped taking the GIL."""
    import os
    import threading

    from napari_mclstexp._qt._worker import TaskPanel
    from napari_mclstexp.progress import Progress
    from napari_mclstexp.progress_process import BACKGROUND_NICE

    panel = TaskPanel()
    qtbot.addWidget(panel)
    seen: dict = {}

    def work(token):
        seen["worker"] = os.getpriority(os.PRIO_PROCESS, 0)
        child = threading.Thread(target=lambda: seen.setdefault("child", os.getpriority(os.PRIO_PROCESS, 0)))
        child.start()
        child.join()
        yield Progress("work", 1, 1)
        return 1

    gui = os.getpriority(os.PRIO_PROCESS, 0)
    with qtbot.waitSignal(panel.finished, timeout=10_000):
        panel.start(work, lambda value: None, description="Work")
    assert seen["worker"] == seen["child"] == min(gui + BACKGROUND_NICE, 19)
    assert os.getpriority(os.PRIO_PROCESS, 0) == gui  # the GUI thread keeps its own
