"""Predict widget: the stain choice reaches the engine through its options, and the model's and the slide's stains
show as swatches."""

from __future__ import annotations

import json

from napari_mclstexp.bundle import load_bundle, save_bundle
from napari_mclstexp.predict.options import PredictOptions

WAIT_MS = 120_000


def test_stain_choice_and_swatches(make_napari_viewer, qtbot, tiny_bundle, h5ad_paths, synthetic_samples, tmp_path):
    from napari_mclstexp.data.slide_stain import training_reference

    bundle = load_bundle(tiny_bundle)
    assert bundle.metadata["reference_stain"]["training"] == "as scanned"  # measured, not applied, by default
    del bundle.metadata["reference_stain"]  # as a bundle made before the training stains were stored
    plain = save_bundle(bundle, tmp_path / "plain.mclst")
    # what train --stain-normalize stored before the sections' own stains were: their reference
    bundle.metadata["reference_stain"] = training_reference(synthetic_samples[:2]).to_dict()
    path = save_bundle(bundle, tmp_path / "stained.mclst")
    viewer = make_napari_viewer()
    load = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Load")[1]
    with qtbot.waitSignal(load.task.finished, timeout=WAIT_MS):
        load.load(spots=str(h5ad_paths[2]))
    predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(plain))
    assert all("dashed" in s.styleSheet() for s in predict.stain.model_swatches)  # no reference stain
    predict.bundle_path.setText(str(path))
    assert all("background: rgb(" in s.styleSheet() for s in predict.stain.model_swatches)
    predict.mode.setCurrentText("at spots")
    assert predict.stain.value() == "auto" and predict.options().stain == "auto"  # the default
    records = []
    for index in (0, 1):
        predict.stain.combo.setCurrentIndex(index)
        assert predict.options() == PredictOptions(device=predict.device.currentText(), stain=("auto", "none")[index])
        with qtbot.waitSignal(predict.task.finished, timeout=WAIT_MS) as blocker:
            predict.predict()
        records.append(blocker.args[0].uns["mclstexp"]["stain"])
        if index == 0:  # the slide's estimate beside the model's
            assert all("background: rgb(" in s.styleSheet() for s in predict.stain.slide_swatches)
            assert predict.stain.status.text() == "mapped"
    auto, none = records
    assert auto["mode"] == "auto" and auto["applied"]
    assert none == {"mode": "none", "applied": False, "reason": "turned off"}
    assert predict.stain.status.text() == "turned off"  # the last run's record
    assert all("dashed" in s.styleSheet() for s in predict.stain.slide_swatches)
    predict.stain.combo.setCurrentIndex(2)
    assert predict.stain.file.isVisibleTo(predict.stain) and predict.stain.value() == "none"  # no file chosen yet
    reference = tmp_path / "ref.json"
    reference.write_text(json.dumps({"reference_stain": bundle.metadata["reference_stain"]}))
    predict.stain.file.setText(str(reference))
    assert predict.stain.value() == str(reference) and predict.options().stain == str(reference)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    predict.stain.file.setText(str(bad))
    assert predict.predict() is None  # refused before any work, with the reason on the status line
    assert "not a stain reference" in predict.task.status.text() and not predict.task.running


def test_status_says_how_far_the_rule_moved_the_slide(qtbot):
    from napari_mclstexp._qt._stain_row import StainChoice

    row = StainChoice()
    qtbot.addWidget(row)
    row.show_record({"mode": "auto", "applied": True, "nearest": "B4", "fraction": 0.8})
    assert row.status.text() == "moved 80 % toward B4's stain"
    row.show_record({"mode": "auto", "applied": False, "reason": "left as scanned: within the training stains (…)"})
    assert row.status.text().startswith("left as scanned")
