"""Predict widget: neighbour smoothing on by default at the bundle's weight, and switchable off."""

from __future__ import annotations

import numpy as np

from napari_mclstexp.bundle import load_bundle, save_bundle
from napari_mclstexp.predict.options import PredictOptions

WAIT_MS = 120_000


def test_smooth_checkbox_switches_neighbour_smoothing(make_napari_viewer, qtbot, tiny_bundle, h5ad_paths, tmp_path):
    bundle = load_bundle(tiny_bundle)
    bundle.metadata["smoothing"] = {"alpha": 0.5}
    path = save_bundle(bundle, tmp_path / "smooth.mclst")
    viewer = make_napari_viewer()
    load = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Load")[1]
    with qtbot.waitSignal(load.task.finished, timeout=WAIT_MS):
        load.load(spots=str(h5ad_paths[2]))
    predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(path))
    predict.mode.setCurrentText("at spots")
    assert predict.smooth.isChecked()  # on by default
    results = []
    for on in (True, False):
        predict.smooth.setChecked(on)
        # the one options value the widget builds from its controls
        assert predict.options() == PredictOptions(device=predict.device.currentText(), smooth=on)
        with qtbot.waitSignal(predict.task.finished, timeout=WAIT_MS) as blocker:
            predict.predict()
        results.append(blocker.args[0])
    smoothed, raw = results
    assert smoothed.uns["mclstexp"]["neighbour_alpha"] == 0.5 and raw.uns["mclstexp"]["neighbour_alpha"] == 0.0
    assert not np.allclose(np.asarray(smoothed.X), np.asarray(raw.X))
