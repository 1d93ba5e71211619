"""The Train step's Stain row reaches the training's configuration (as ``train --stain-normalize
--stain-augment``), and leaves it at the presets' defaults when untouched."""

from __future__ import annotations

from napari_mclstexp._qt import train as train_step
from napari_mclstexp.progress import run


def test_stain_row_reaches_the_training_config(make_napari_viewer, synthetic_samples, tmp_path, monkeypatch):
    widget = train_step.TrainWidget(make_napari_viewer())
    assert "stain_normalize" not in widget.overrides() and "stain_augment" not in widget.overrides()
    widget.stain_normalize.setChecked(True)
    widget.stain_augment.setValue(0.05)
    assert widget.overrides()["stain_normalize"] is True and widget.overrides()["stain_augment"] == 0.05

    seen = {}

    def fake_process(samples, config, out, **kwargs):  # what the worker process would train with
        seen["config"] = config
        return None
        yield

    monkeypatch.setattr("napari_mclstexp.workflows.train_worker.train_in_process", fake_process)
    gen = train_step.train_and_save(
        synthetic_samples[:1],
        "quick",
        epochs=1,
        genes="hvg:8",
        device="cpu",
        out=str(tmp_path / "m.mclst"),
        overrides=widget.overrides(),
    )
    run(gen)
    assert seen["config"].stain_normalize is True and seen["config"].stain_augment == 0.05
