"""Predict step: the chosen bundle's model card, a hidden novelty layer beside the predictions, the warning."""

from __future__ import annotations

import numpy as np

from napari_mclstexp.bundle import load_bundle, save_bundle
from napari_mclstexp.predict import novelty as nv

WAIT_MS = 120_000


def test_card_novelty_layer_and_warning(make_napari_viewer, qtbot, tiny_bundle, h5ad_paths, tmp_path, notes):
    bundle = load_bundle(tiny_bundle)
    # a calibration under which every spot of another section is less typical than all held-out spots
    bundle.novelty_reference = np.asarray(bundle.bank.embeddings[:50], np.float32)
    bundle.metadata["novelty"] = nv.calibrate(np.full(100, 1.0), k=5, space="image embeddings", groups="sections")
    bundle.metadata["tissue"] = "synthetic test tissue"
    path = save_bundle(bundle, tmp_path / "novel.mclst")
    viewer = make_napari_viewer()
    load = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Load")[1]
    with qtbot.waitSignal(load.task.finished, timeout=WAIT_MS):
        load.load(spots=str(h5ad_paths[2]))
    predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(path))
    assert "trained on SYN1, SYN2; synthetic test tissue" in predict.card.text()
    assert "novelty: calibrated on 100 held-out" in predict.card.toolTip()
    predict.mode.setCurrentText("at spots")
    with qtbot.waitSignal(predict.task.finished, timeout=WAIT_MS) as blocker:
        predict.predict()
    pred = blocker.args[0]
    assert pred.uns["mclstexp"]["novel_fraction"] > 0.9
    layer = next(ly for ly in viewer.layers if ly.name.endswith("novelty"))
    assert not layer.visible and len(layer.data) == pred.n_obs
    assert any("of this tissue is unlike anything the model was trained on" in str(n.message) for n in notes)
    assert "unlike anything the model was trained on" in viewer.canvas.overlays.text.text
    predict.bundle_path.setText(str(tmp_path / "missing.mclst"))
    assert predict.card.text() == ""
