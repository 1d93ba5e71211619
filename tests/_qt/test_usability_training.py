"""Usability fixes found by walking the computational biologist's path with real her2st data (train,
cancel, save, predict a held-out section, evaluate); each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.progress import run


def test_training_status_line_reads_like_a_sentence():
    """The Train status showed ``epoch 1/2 · epoch 1 · step 7 · … · spots_per_s 236.5 · eta_s 5432``:
    raw keys, duplicates, and an ETA in seconds.  Now: loss, rate and a clock-like ETA."""
    from napari_mclstexp._qt._worker import format_event
    from napari_mclstexp.progress import Progress

    event = Progress(
        "train",
        7,
        22,
        message="epoch 1/2",
        metrics={"epoch": 1, "step": 7, "loss": 3.5781, "spots_per_s": 236.54, "eta_s": 5432.0},
    )
    assert format_event(event) == "train · 7/22 · epoch 1/2 · loss 3.578 · 237 spots/s · ETA 1 h 30 min"
    tiles = Progress("predict", 3, 9, metrics={"tiles_per_s": 12.3, "eta_s": 65.2})
    assert format_event(tiles) == "predict · 3/9 · 12.3 tiles/s · ETA 1 min 05 s"
    assert format_event(Progress("train", 22, 22, metrics={"eta_s": 0.0})) == "train · 22/22"
    assert format_event(Progress("load", 0, 2, message="reading spots")) == "load · 0/2 · reading spots"


def test_offline_imagenet_weights_error_speaks_widget(make_napari_viewer, synthetic_samples, tmp_path, monkeypatch):
    """Offline, the default preset failed in the Train widget with "pass --weights PATH or --weights
    none": CLI flags the widget did not have.  It now has a Weights field and the message names it."""
    import pytest

    from napari_mclstexp._qt.train import train_and_save
    from napari_mclstexp.errors import WeightsUnavailableError

    class Offline:
        def get_state_dict(self, progress=False):
            raise OSError("Name or service not known")

    monkeypatch.setattr(
        "napari_mclstexp.model.encoders._torchvision_model", lambda name: (__import__("torch").nn.Identity(), Offline())
    )
    out = tmp_path / "m.mclst"
    with pytest.raises(WeightsUnavailableError) as info:
        run(  # in this thread: the offline patch above does not reach a worker process
            train_and_save(
                list(synthetic_samples[:1]),
                "default",
                epochs=1,
                genes="hvg:8",
                device="cpu",
                out=str(out),
                in_process=False,
            )
        )
    message = str(info.value)
    assert "--weights" not in message and "Weights field" in message and "quick preset" in message
    assert not out.exists()
    viewer = make_napari_viewer()
    train = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Train")[1]
    assert "weights" not in train.overrides()
    train.weights.setText("none")
    assert train.overrides()["weights"] == "none"


def test_bad_model_path_is_refused_before_training(synthetic_samples, tmp_path, monkeypatch):
    """Save to a folder or to an unwritable place failed only after the whole training, with an
    ``IsADirectoryError`` about a hidden temporary file.  Now checked first, with the path named;
    a name without suffix gets ``.mclst`` (Predict's file dialog lists only those)."""
    import pytest

    from napari_mclstexp._qt.train import train_and_save
    from napari_mclstexp.errors import OutputError
    from napari_mclstexp.workflows.train import bundle_output

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr("napari_mclstexp.train.trainer.train", no_training)
    with pytest.raises(OutputError, match=f"{tmp_path}.*is a folder"):
        run(
            train_and_save(
                list(synthetic_samples[:1]), "quick", epochs=1, genes="hvg:8", device="cpu", out=str(tmp_path)
            )
        )
    # a place nothing can write, root included (CI runs as root): a folder path under a regular file
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="a-file/m.mclst.*cannot write"):
        bundle_output(str(blocker / "m.mclst"))
    assert bundle_output(str(tmp_path / "new" / "her2")) == tmp_path / "new" / "her2.mclst"
    assert bundle_output(str(tmp_path / "m.mclst")) == tmp_path / "m.mclst"
    with pytest.raises(OutputError, match="cannot write"):
        bundle_output("/proc/m.mclst")


def test_trained_model_is_offered_to_predict(make_napari_viewer, qtbot, synthetic_samples, tmp_path):
    """After training, Predict's Bundle field was empty: the user had to browse for the file just
    saved.  The saved bundle now fills an empty Bundle field (open Predict widgets and later ones)."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import spots_layer

    from .conftest import TINY

    viewer = make_napari_viewer()
    dock = viewer.window.add_plugin_dock_widget
    add_layer_tuples(viewer, [spots_layer(synthetic_samples[0])])
    early = dock("napari-mclstexp", "Predict")[1]
    train = dock("napari-mclstexp", "Train")[1]
    train.config_overrides = dict(TINY)
    train.epochs.setValue(1)
    train.genes.setText("hvg:8")
    train.out.setText(str(tmp_path / "fresh"))
    with qtbot.waitSignal(train.task.finished, timeout=120_000) as blocker:
        train.train()
    assert blocker.args[0] is not None
    saved = str(tmp_path / "fresh.mclst")
    assert early.bundle_path.text() == saved and saved in train.result_label.text()
    from napari_mclstexp._qt.predict import PredictWidget

    assert PredictWidget(viewer).bundle_path.text() == saved  # a Predict widget opened later
    other = make_napari_viewer()  # another viewer's widgets are not touched
    assert other.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1].bundle_path.text() == ""


def test_genes_field_takes_gene_names(make_napari_viewer, tmp_path):
    """Typing a small panel ("ERBB2, CD74, KRT19") in Train's Genes field failed with "gene list file
    not found": only hvg:N or a file worked.  Names separated by commas or spaces are a panel now."""
    viewer = make_napari_viewer()
    train = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Train")[1]
    for text, spec in [
        ("", None),
        ("hvg:50", "hvg:50"),
        ("ERBB2, CD74,KRT19", ["ERBB2", "CD74", "KRT19"]),
        ("ERBB2 CD74", ["ERBB2", "CD74"]),
        ("ERBB2", ["ERBB2"]),
    ]:
        train.genes.setText(text)
        assert train._genes_spec() == spec, text
    panel = tmp_path / "my panel.txt"
    panel.write_text("ERBB2\nCD74\n")
    train.genes.setText(str(panel))
    assert train._genes_spec() == str(panel)
    train.genes.setText(str(tmp_path / "missing.txt"))  # a path stays a path (and its error names it)
    assert train._genes_spec() == str(tmp_path / "missing.txt")


def test_warnings_from_a_task_reach_the_user(qtbot, notes, synthetic_sample):
    """Engine warnings raised in a worker (a missing slide, panel genes absent from a section) never
    showed: napari 0.9's worker relay is not connected (its mixin's ``__init__`` is not reached).
    The task panel relays them as warning notifications."""
    import warnings

    from napari_mclstexp._qt._worker import TaskPanel
    from napari_mclstexp.layer_data import sample_layers
    from napari_mclstexp.progress import Progress

    def task(token):
        yield Progress("load", 0, 1)
        sample_layers(sample)  # the plugin's own warning (a missing slide): shown
        warnings.warn("a library's own deprecation (usability test)", FutureWarning, stacklevel=1)  # console
        yield Progress("load", 1, 1)
        return "done"

    sample = synthetic_sample
    lib = next(iter(sample.uns["spatial"]))
    sample.uns["spatial"][lib]["metadata"]["source_image_path"] = "/data/B4.jpg"

    panel = TaskPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.finished, timeout=10_000) as blocker:
        panel.start(task, lambda value: None, description="Load")
    qtbot.wait(50)
    assert blocker.args == ["done"]
    warned = [str(n.message) for n in notes if str(getattr(n, "severity", "")).lower().endswith("warning")]
    assert len(warned) == 1 and warned[0].startswith("/data/B4.jpg: image file not found")


def test_prediction_at_measured_spots_is_scored(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle):
    """Predicting on a held-out section with measured counts, the biologist's next question is "how
    good?": the widgets had no evaluation.  Predict at spots now reports the paper's metrics against
    the measured counts (and keeps them in the predictions' provenance)."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.analysis.metrics import evaluate
    from napari_mclstexp.layer_data import spots_layer

    viewer = make_napari_viewer()
    truth = synthetic_samples[2]
    add_layer_tuples(viewer, [spots_layer(truth)])
    predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(tiny_bundle))
    with qtbot.waitSignal(predict.task.finished, timeout=60_000) as blocker:
        predict.predict()
    pred = blocker.args[0]
    scores = pred.uns["mclstexp"]["vs_measured"]
    assert scores["acg"] == pytest.approx(evaluate(pred, truth)["acg"])
    assert f"ACG {scores['acg']:.3f}" in predict.info.text() and "SYN3 spots" in predict.info.text()


def test_score_text_survives_undefined_metrics(tmp_path):
    """Constant predictions have no correlation (NaN): the line says n/a and the predictions with
    their scores still save as ``.h5ad``."""
    import anndata as ad

    from napari_mclstexp._qt.predict import score_text

    scores = {"acg": float("nan"), "heg50": 0.5, "mse": 1.25, "n_genes": 3, "matched_by": "name"}
    assert score_text(scores) == "ACG n/a · HEG@50 0.500 · MSE 1.25 (3 genes)"
    pred = ad.AnnData(np.zeros((2, 3), np.float32))
    pred.uns["mclstexp"] = {"vs_measured": scores}
    pred.write_h5ad(tmp_path / "p.h5ad")
    assert np.isnan(ad.read_h5ad(tmp_path / "p.h5ad").uns["mclstexp"]["vs_measured"]["acg"])


def test_training_on_a_section_without_slide_names_it(synthetic_samples, tmp_path, monkeypatch):
    """Ticking a spots layer that has no slide (a Visium folder, expression-only her2st) failed with
    "sample has no image (uns['spatial'][lib]['metadata']['source_image_path'])": which one?  The
    message now names the section and what to do, before any training."""
    from napari_mclstexp._qt.train import train_and_save
    from napari_mclstexp.errors import InputError

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr("napari_mclstexp.train.trainer.train", no_training)
    bare = synthetic_samples[1].copy()
    lib = next(iter(bare.uns["spatial"]))
    del bare.uns["spatial"][lib]["metadata"]["source_image_path"]
    with pytest.raises(InputError, match="SYN2: no H&E slide.*Load → Slide.*leave this section out"):
        run(
            train_and_save(
                [synthetic_samples[0], bare],
                "quick",
                epochs=1,
                genes="hvg:8",
                device="cpu",
                out=str(tmp_path / "m.mclst"),
            )
        )
