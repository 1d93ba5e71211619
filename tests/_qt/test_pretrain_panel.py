"""Train widget: "Pretrain encoder on these slides…" runs pretraining on the ticked sections and fills Weights."""

from __future__ import annotations


def test_pretrain_from_the_train_widget_fills_weights(make_napari_viewer, qtbot, synthetic_samples, tmp_path):
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp._qt._layers import spots_layer
    from napari_mclstexp.model.encoders import make_image_encoder
    from napari_mclstexp.model.weights import load_weights_file
    from napari_mclstexp.sample import image_path

    viewer = make_napari_viewer()
    add_layer_tuples(viewer, [spots_layer(synthetic_samples[0])])
    widget = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Train")[1]
    panel = widget.pretrain_panel
    panel.options = {"tiles_per_slide": 8, "batch_size": 8, "threads": 1}
    panel.epochs.setValue(1)
    panel.extra.setText(str(image_path(synthetic_samples[2])))  # a slide without ST data
    panel.out.setText(str(tmp_path / "enc.safetensors"))
    widget.device.setCurrentText("cpu")
    assert len(panel.slides()) == 2
    assert panel.pretrain() is not None
    with qtbot.waitSignal(panel.task.finished, timeout=120_000):
        pass
    assert panel.result is not None and panel.result.result.n_tiles == 16
    assert widget.weights.text() == str(tmp_path / "enc.safetensors")
    assert widget.overrides()["weights"] == str(tmp_path / "enc.safetensors")
    enc, _ = make_image_encoder("smallcnn", "none", 64)
    load_weights_file(enc, widget.weights.text())


def test_pretrain_without_output_is_one_clear_error(make_napari_viewer, qtbot):
    from napari_mclstexp.errors import InputError

    viewer = make_napari_viewer()
    widget = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Train")[1]
    panel = widget.pretrain_panel
    panel.extra.setText("/nowhere/slide.tif")
    with qtbot.waitSignal(panel.task.finished, timeout=60_000):
        panel.pretrain()
    assert isinstance(panel.task.last_error, InputError)
    assert "where to save the encoder weights" in str(panel.task.last_error)
    assert widget.weights.text() == "" and panel.result is None
