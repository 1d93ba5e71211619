"""Training from the widget: Cancel stops it, nothing is saved; keeping the viewer responsive and Cancel
returning within one step are wall-clock checks (``make bench``: ``pytest -m timing``)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from qtpy.QtCore import QTimer

TINY = {"patch_px": 32, "input_px": 16, "batch_size": 32, "embed_dim": 16, "k": 10}


def _train_then_cancel(make_napari_viewer, qtbot, synthetic_samples, tmp_path):
    """Start a long training, click Cancel after 10 steps; the widget, the finished signal's blocker and
    the times (s) of the steps, of the GUI timer's ticks and of Cancel's return."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import spots_layer

    viewer = make_napari_viewer()
    add_layer_tuples(viewer, [spots_layer(a) for a in synthetic_samples[:2]])
    widget = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Train")[1]
    widget.config_overrides = dict(TINY)
    widget.epochs.setValue(200)
    widget.out.setText(str(tmp_path / "never.mclst"))

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    step_times: list[float] = []
    assert widget.train() is not None
    widget.task.worker.yielded.connect(lambda e: step_times.append(time.perf_counter()) if e.stage == "train" else None)
    timer.start()
    qtbot.waitUntil(lambda: len(step_times) >= 10, timeout=120_000)
    with qtbot.waitSignal(widget.task.finished, timeout=60_000) as blocker:
        t_cancel = time.perf_counter()
        widget.task.cancel_button.click()
    latency = time.perf_counter() - t_cancel
    timer.stop()
    return widget, blocker, np.diff(step_times), np.diff(ticks), latency


def test_cancel_stops_training_and_saves_nothing(make_napari_viewer, qtbot, synthetic_samples, tmp_path, notes):
    widget, blocker, steps, _, _ = _train_then_cancel(make_napari_viewer, qtbot, synthetic_samples, tmp_path)
    assert blocker.args == [None]
    assert "cancelled" in widget.task.status.text()
    assert not (tmp_path / "never.mclst").exists()
    assert len(steps) >= 9  # it was training when cancelled
    assert any("cancelled" in str(getattr(n, "message", n)) for n in notes)


@pytest.mark.timing
def test_cancel_within_one_step_and_no_ui_stall(make_napari_viewer, qtbot, synthetic_samples, tmp_path):
    widget, blocker, steps, gaps, latency = _train_then_cancel(make_napari_viewer, qtbot, synthetic_samples, tmp_path)
    print(
        f"step {np.median(steps) * 1e3:.0f} ms (max {steps.max() * 1e3:.0f}), cancel {latency * 1e3:.0f} ms, "
        f"longest UI gap {gaps.max() * 1e3:.0f} ms over {len(gaps) + 1} ticks"
    )
    assert blocker.args == [None]
    assert latency < steps.max() + 0.5, (latency, steps)
    assert gaps.max() < 0.2, f"UI stalled {gaps.max() * 1e3:.0f} ms"
