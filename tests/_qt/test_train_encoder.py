"""Train widget: encoder, weights file, frozen/partial and head fields; the feature-extraction stage shows."""

from __future__ import annotations

import torch


def test_encoder_fields_follow_the_engine_rules(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Train")[1]
    fields = widget.encoder_fields
    assert widget.overrides() == {"head": "contrastive"}  # nothing chosen: the preset's encoder
    fields.encoder.setCurrentText("uni")
    ch = widget.overrides()
    assert (ch["encoder"], ch["input_px"], ch["patch_um"], ch["freeze"], ch["weights"]) == (
        "uni",
        224,
        112.0,
        True,
        "hub",
    )
    fields.mode.setCurrentText("partial (last N blocks)")
    fields.unfreeze.setValue(3)
    fields.weights.setText("/models/uni.bin")
    ch = widget.overrides()
    assert ch["unfreeze_last"] == 3 and ch["freeze"] is True and ch["weights"] == "/models/uni.bin"
    fields.mode.setCurrentText("end to end")
    fields.head.setCurrentText("ridge")
    assert widget.overrides()["freeze"] is True  # ridge needs frozen features


def test_frozen_timm_training_from_the_widget(make_napari_viewer, qtbot, synthetic_samples, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import spots_layer
    from napari_mclstexp.model.encoders import make_image_encoder

    monkeypatch.setenv("MCLSTEXP_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    enc, _ = make_image_encoder("timm:vit_tiny_patch16_224", "none", input_px=32)
    weights = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in enc.model.state_dict().items()}, str(weights))
    viewer = make_napari_viewer()
    add_layer_tuples(viewer, [spots_layer(a) for a in synthetic_samples[:2]])
    widget = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Train")[1]
    widget.config_overrides = {"patch_px": 64, "input_px": 32, "embed_dim": 16, "k": 8}
    widget.encoder_fields.encoder.setCurrentText("timm:vit_tiny_patch16_224")
    widget.encoder_fields.weights.setText(str(weights))
    widget.encoder_fields.mode.setCurrentText("frozen (features cached)")
    widget.epochs.setValue(1)
    widget.out.setText(str(tmp_path / "m.mclst"))
    stages: list[str] = []
    assert widget.train() is not None
    widget.task.worker.yielded.connect(lambda e: stages.append(e.stage))
    with qtbot.waitSignal(widget.task.finished, timeout=120_000):
        pass
    assert "features" in stages and "train" in stages
    assert widget.bundle is not None and widget.bundle.config["freeze"] is True
    assert widget.bundle.metadata["encoder_weights"]["embedded"] is False
