"""Predict widget: the stain choice reaches the engine, and the model's and the slide's stains show as swatches."""

from __future__ import annotations

from napari_mclstexp.bundle import load_bundle, save_bundle

WAIT_MS = 120_000


def test_stain_choice_and_swatches(make_napari_viewer, qtbot, tiny_bundle, h5ad_paths, synthetic_samples, tmp_path):
    from napari_mclstexp.data.slide_stain import training_reference

    bundle = load_bundle(tiny_bundle)
    assert "reference_stain" not in bundle.metadata  # off by default
    # what train --stain-normalize stores: the training sections' reference
    bundle.metadata["reference_stain"] = training_reference(synthetic_samples[:2]).to_dict()
    path = save_bundle(bundle, tmp_path / "stained.mclst")
    viewer = make_napari_viewer()
    load = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Load")[1]
    with qtbot.waitSignal(load.task.finished, timeout=WAIT_MS):
        load.load(spots=str(h5ad_paths[2]))
    predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(path))
    predict.mode.setCurrentText("at spots")
    assert predict.stain.value() == "auto"  # the default
    records = []
    for index in (0, 1):
        predict.stain.combo.setCurrentIndex(index)
        with qtbot.waitSignal(predict.task.finished, timeout=WAIT_MS) as blocker:
            predict.predict()
        records.append(blocker.args[0].uns["mclstexp"]["stain"])
    auto, none = records
    assert (
        auto["mode"] == "auto"
        and auto["applied"]
        and none == {"mode": "none", "applied": False, "reason": "turned off"}
    )
    assert all("background: rgb(" in s.styleSheet() for s in predict.stain.model_swatches)
    assert predict.stain.status.text() == "turned off"  # the last run's record
    predict.stain.combo.setCurrentIndex(2)
    assert predict.stain.file.isVisibleTo(predict.stain) and predict.stain.value() == "none"  # no file chosen yet
    predict.stain.file.setText("/some/ref.json")
    assert predict.stain.value() == "/some/ref.json"
