"""Training from the widget keeps the viewer responsive, and Cancel returns within one step."""

from __future__ import annotations

import time

import numpy as np
from qtpy.QtCore import QTimer

TINY = {"patch_px": 32, "input_px": 16, "batch_size": 32, "embed_dim": 16, "k": 10}


def test_cancel_within_one_step_and_no_ui_stall(make_napari_viewer, qtbot, synthetic_samples, tmp_path, notes):
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
    steps = np.diff(step_times)
    gaps = np.diff(ticks)
    print(
        f"step {np.median(steps) * 1e3:.0f} ms (max {steps.max() * 1e3:.0f}), cancel {latency * 1e3:.0f} ms, "
        f"longest UI gap {gaps.max() * 1e3:.0f} ms over {len(ticks)} ticks"
    )
    assert blocker.args == [None]
    assert "cancelled" in widget.task.status.text()
    assert not (tmp_path / "never.mclst").exists()
    assert latency < steps.max() + 0.5, (latency, steps)
    assert gaps.max() < 0.2, f"UI stalled {gaps.max() * 1e3:.0f} ms"
    assert any("cancelled" in str(getattr(n, "message", n)) for n in notes)
