"""Usability fixes found by walking through the plugin with real her2st data (each test failed first)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.progress import run


def test_flat_slide_takes_the_spots_pixel_size(tmp_path):
    """A JPEG/PNG slide has no pixel size: loaded with spots, it must share their µm scale (else the
    spots sit at 0.69× the slide, off the tissue, as with her2st JPEGs + ``.h5ad``)."""
    from napari_mclstexp._qt.load import load_layers
    from napari_mclstexp.synthetic import make_synthetic_sample

    adata = make_synthetic_sample(tmp_path, seed=4, section="FLAT", image_format="png", mpp=0.5)
    adata.write_h5ad(tmp_path / "FLAT.h5ad")
    slide, spots = run(load_layers(str(tmp_path / "FLAT.png"), str(tmp_path / "FLAT.h5ad")))
    assert slide[2] == "image" and spots[2] == "points"
    assert slide[1]["scale"] == spots[1]["scale"] == (0.5, 0.5)
    assert slide[1]["metadata"]["mclstexp"]["mpp"] == 0.5


def _predictions(adata, genes):
    """Fake predictions of ``genes`` at the spots of ``adata`` (what Predict puts in a layer)."""
    import anndata as ad

    pred = ad.AnnData(np.ones((adata.n_obs, len(genes)), np.float32), obs=adata.obs[[]].copy())
    pred.var_names = genes
    pred.obsm["spatial"] = adata.obsm["spatial"].copy()
    pred.uns["spatial"] = adata.uns["spatial"]
    return pred


def test_measured_genes_outside_the_predicted_panel_can_be_explored(make_napari_viewer, synthetic_samples,
                                                                    notes):
    """Measured spots carry the whole transcriptome: a gene the model does not predict (or a model
    whose panel shares no gene with the sample) must still colour them, normalised over all genes,
    instead of "X is not in …" or an uncaught ``GenePanelError``."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp._qt._layers import spots_layer

    viewer = make_napari_viewer()
    adata = synthetic_samples[0]
    genes = list(map(str, adata.var_names))
    (measured,) = add_layer_tuples(viewer, [spots_layer(adata)])
    explore = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore")[1]
    counts = np.asarray(adata.X.toarray(), np.float64)
    expected = np.log10(1 + 1e4 * counts[:, 5] / counts.sum(axis=1))
    for panel in (genes[:2], ["NOT_MEASURED_1", "NOT_MEASURED_2"]):
        (predicted,) = add_layer_tuples(viewer, [spots_layer(_predictions(adata, panel), role="predicted")])
        explore.target.select(measured)
        explore.set_gene(genes[5])
        assert np.allclose(measured.features["value"], expected, atol=1e-5)
        viewer.layers.remove(predicted)
    # a gene inside the panel stays normalised over the panel, comparable to the predictions
    add_layer_tuples(viewer, [spots_layer(_predictions(adata, genes[:3]), role="predicted")])
    explore.target.select(measured)
    explore.set_gene(genes[1])
    panel_expected = np.log10(1 + 1e4 * counts[:, 1] / counts[:, :3].sum(axis=1))
    assert np.allclose(measured.features["value"], panel_expected, atol=1e-5)
    assert not [n for n in notes if str(getattr(n, "severity", "")).lower().endswith("error")]


def test_missing_slide_of_a_sample_is_reported(synthetic_sample, tmp_path):
    """Spots whose image was moved: the spots still load, and the user is told which file is missing
    (before, the spots appeared over nothing, silently)."""
    import pytest

    from napari_mclstexp._qt.load import load_layers
    from napari_mclstexp._reader import read_h5ad_layers

    lib = next(iter(synthetic_sample.uns["spatial"]))
    moved = tmp_path / "moved_away.png"
    synthetic_sample.uns["spatial"][lib]["metadata"]["source_image_path"] = str(moved)
    synthetic_sample.write_h5ad(tmp_path / "s.h5ad")
    with pytest.warns(UserWarning, match="moved_away.png: image file not found"):
        layers = read_h5ad_layers(str(tmp_path / "s.h5ad"))
    assert [t[2] for t in layers] == ["points"]
    with pytest.warns(UserWarning, match="moved_away.png"):
        layers = run(load_layers(None, str(tmp_path / "s.h5ad")))
    assert [t[2] for t in layers] == ["points"]


def _tiny_her2st(root):
    """A her2st-layout folder with two imaged sections (the builder of the io tests)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("io_builders", Path(__file__).parents[1] / "io" / "conftest.py")
    builders = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builders)
    return builders.write_her2st_dir(root, sections=("A1", "A2", "B1"), image_sections=("A2", "B1"))


def test_her2st_folder_shows_one_section_at_a_time(make_napari_viewer, tmp_path):
    """Every section has its own slide at the same origin: the top slide covered the others, yet all
    were listed visible and drawn.  Only the top (last) section is visible now, and it is the one
    Predict offers first."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp._qt.load import load_layers
    from napari_mclstexp._reader import read_her2st_layers

    root = _tiny_her2st(tmp_path / "her2st")
    for layers in (read_her2st_layers(str(root)), run(load_layers(None, str(root)))):
        assert [t[2] for t in layers] == ["image", "points", "image", "points"]
        assert [t[1].get("visible", True) for t in layers] == [False, False, True, True]
        assert layers[3][1]["name"] == "B1 spots"
    viewer = make_napari_viewer()
    add_layer_tuples(viewer, layers)
    predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1]
    assert predict.spots.currentText() == "B1 spots" and viewer.layers["B1 spots"].visible


def test_training_status_line_reads_like_a_sentence():
    """The Train status showed ``epoch 1/2 · epoch 1 · step 7 · … · spots_per_s 236.5 · eta_s 5432``:
    raw keys, duplicates, and an ETA in seconds.  Now: loss, rate and a clock-like ETA."""
    from napari_mclstexp._qt._worker import format_event
    from napari_mclstexp.progress import Progress

    event = Progress("train", 7, 22, message="epoch 1/2",
                     metrics={"epoch": 1, "step": 7, "loss": 3.5781, "spots_per_s": 236.54, "eta_s": 5432.0})
    assert format_event(event) == "train · 7/22 · epoch 1/2 · loss 3.578 · 237 spots/s · ETA 1 h 30 min"
    tiles = Progress("predict", 3, 9, metrics={"tiles_per_s": 12.3, "eta_s": 65.2})
    assert format_event(tiles) == "predict · 3/9 · 12.3 tiles/s · ETA 1 min 05 s"
    assert format_event(Progress("train", 22, 22, metrics={"eta_s": 0.0})) == "train · 22/22"
    assert format_event(Progress("load", 0, 2, message="reading spots")) == "load · 0/2 · reading spots"


def test_layers_in_micrometres_carry_the_unit(make_napari_viewer, qtbot, h5ad_paths, tiny_bundle):
    """Layers were scaled in µm but unit-less, so napari's scale bar and the viewer's units said
    nothing (or pixels).  Every layer the plugin makes at a known pixel size now says µm."""
    import pint

    viewer = make_napari_viewer()
    dock = viewer.window.add_plugin_dock_widget
    load = dock("napari-mclstexp", "Load")[1]
    with qtbot.waitSignal(load.task.finished, timeout=60_000):
        load.load(slide="", spots=str(h5ad_paths[2]))
    predict = dock("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(tiny_bundle))
    with qtbot.waitSignal(predict.task.finished, timeout=60_000):
        predict.predict()
    predict.mode.setCurrentText("whole slide")
    predict.step.setValue(64)
    with qtbot.waitSignal(predict.task.finished, timeout=60_000):
        predict.predict()
    explore = dock("napari-mclstexp", "Explore")[1]
    explore.target.select(viewer.layers["SYN3 spots predicted"])
    explore.regions.region_layer()
    explore.side_by_side.setChecked(True)
    um = pint.get_application_registry().micrometer
    assert len(viewer.layers) == 7
    for layer in viewer.layers:
        assert tuple(layer.units) == (um, um), layer.name
    assert tuple(viewer.layers.extent.units) == (um, um)


def test_predicting_with_a_model_of_other_genes_says_so(make_napari_viewer, qtbot, synthetic_sample,
                                                       tiny_bundle, notes):
    """The demo model (synthetic genes) on a real section predicted silently; then nothing could be
    compared with the measured spots and nobody said why.  Predicting still works (only the image is
    needed), and a warning names the bundle and the mismatch."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp._qt._layers import spots_layer

    synthetic_sample.var_names = [f"REAL{i}" for i in range(synthetic_sample.n_vars)]
    viewer = make_napari_viewer()
    add_layer_tuples(viewer, [spots_layer(synthetic_sample)])
    predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(tiny_bundle))
    with qtbot.waitSignal(predict.task.finished, timeout=60_000) as blocker:
        predict.predict()
    assert blocker.args[0] is not None and "SYN1 spots predicted" in viewer.layers
    warned = [str(n.message) for n in notes if str(getattr(n, "severity", "")).lower().endswith("warning")]
    assert warned and "tiny.mclst" in warned[-1] and "none of its 24 genes" in warned[-1]
    assert "SYN1 spots" in warned[-1]


def test_side_by_side_never_shows_a_stale_measured_gene(make_napari_viewer, synthetic_samples):
    """Side by side, switching to a gene the section did not measure left the measured spots in the
    previous gene's colours, beside the new gene's predictions.  They now show "no value"."""
    from napari_mclstexp._qt._colors import NAN_RGBA
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp._qt._layers import KEY, spots_layer

    viewer = make_napari_viewer()
    adata = synthetic_samples[0]
    gene = str(adata.var_names[0])
    (measured,) = add_layer_tuples(viewer, [spots_layer(adata)])
    (predicted,) = add_layer_tuples(viewer, [spots_layer(_predictions(adata, [gene, "NOT_MEASURED"]),
                                                         role="predicted")])
    predicted.metadata[KEY]["source"] = measured.name
    explore = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore")[1]
    explore.target.select(predicted)
    explore.side_by_side.setChecked(True)
    explore.set_gene(gene)
    assert np.isfinite(measured.features["value"]).all()
    explore.set_gene("NOT_MEASURED")
    assert np.isnan(measured.features["value"]).all()
    assert np.allclose(measured.face_color, NAN_RGBA)
    assert "not measured" in explore.colorbar.title.text()


def test_offline_imagenet_weights_error_speaks_widget(make_napari_viewer, synthetic_samples, tmp_path,
                                                      monkeypatch):
    """Offline, the default preset failed in the Train widget with "pass --weights PATH or --weights
    none": CLI flags the widget did not have.  It now has a Weights field and the message names it."""
    import pytest

    from napari_mclstexp._qt.train import train_and_save
    from napari_mclstexp.errors import WeightsUnavailableError

    class Offline:
        def get_state_dict(self, progress=False):
            raise OSError("Name or service not known")

    monkeypatch.setattr("napari_mclstexp.model.encoders._torchvision_model",
                        lambda name: (__import__("torch").nn.Identity(), Offline()))
    out = tmp_path / "m.mclst"
    with pytest.raises(WeightsUnavailableError) as info:
        run(train_and_save(list(synthetic_samples[:1]), "default", epochs=1, genes="hvg:8", device="cpu",
                           out=str(out)))
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
    import os

    import pytest

    from napari_mclstexp._qt.train import bundle_output, train_and_save
    from napari_mclstexp.errors import OutputError

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr("napari_mclstexp.train.trainer.train", no_training)
    with pytest.raises(OutputError, match=f"{tmp_path}.*is a folder"):
        run(train_and_save(list(synthetic_samples[:1]), "quick", epochs=1, genes="hvg:8", device="cpu",
                           out=str(tmp_path)))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if not os.access(locked, os.W_OK):  # root writes anywhere
        with pytest.raises(OutputError, match="locked.*cannot write"):
            bundle_output(str(locked / "m.mclst"))
    assert bundle_output(str(tmp_path / "new" / "her2")) == tmp_path / "new" / "her2.mclst"
    assert bundle_output(str(tmp_path / "m.mclst")) == tmp_path / "m.mclst"
    with pytest.raises(OutputError, match="cannot write"):
        bundle_output("/proc/m.mclst")


def test_trained_model_is_offered_to_predict(make_napari_viewer, qtbot, synthetic_samples, tmp_path):
    """After training, Predict's Bundle field was empty: the user had to browse for the file just
    saved.  The saved bundle now fills an empty Bundle field (open Predict widgets and later ones)."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp._qt._layers import spots_layer

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


def _without_image(adata, tmp_path):
    """``adata`` saved as ``.h5ad`` without a slide (like a Visium folder: only low-res previews)."""
    lib = next(iter(adata.uns["spatial"]))
    slide = str(adata.uns["spatial"][lib]["metadata"].pop("source_image_path"))
    adata.write_h5ad(tmp_path / "noimage.h5ad")
    return tmp_path / "noimage.h5ad", slide


def test_slide_given_with_imageless_spots_becomes_their_image(synthetic_sample, tmp_path):
    """Visium spots plus their full-resolution slide in the Load widget: the slide was shown but not
    attached, so Predict at spots then failed ("sample has no image").  The slide is now the spots'
    image (in memory; the file is not changed)."""
    from pathlib import Path

    from napari_mclstexp._qt.load import load_layers
    from napari_mclstexp.sample import image_path

    spots_file, slide = _without_image(synthetic_sample, tmp_path)
    layers = run(load_layers(slide, str(spots_file)))
    adata = layers[1][1]["metadata"]["mclstexp"]["adata"]
    assert image_path(adata) == Path(slide).resolve()
    from napari_mclstexp.io.h5ad import read_sample

    assert image_path(read_sample(spots_file)) is None


def test_predict_at_imageless_spots_says_how_to_fix(make_napari_viewer, synthetic_sample, tiny_bundle,
                                                    tmp_path, notes):
    """Predict at spots without a slide said "sample has no image (uns['spatial'][lib]['metadata']
    ['source_image_path'])": AnnData internals, no file, no way forward.  Now it says what to do."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp._qt._layers import spots_layer
    from napari_mclstexp.io.h5ad import read_sample

    spots_file, _ = _without_image(synthetic_sample, tmp_path)
    viewer = make_napari_viewer()
    add_layer_tuples(viewer, [spots_layer(read_sample(spots_file))])
    predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(tiny_bundle))
    assert predict.predict() is None
    message = str(notes[-1].message)
    assert "SYN1 spots" in message and "no H&E slide" in message and "Load" in message


def test_genes_field_takes_gene_names(make_napari_viewer, tmp_path):
    """Typing a small panel ("ERBB2, CD74, KRT19") in Train's Genes field failed with "gene list file
    not found": only hvg:N or a file worked.  Names separated by commas or spaces are a panel now."""
    viewer = make_napari_viewer()
    train = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Train")[1]
    for text, spec in [("", None), ("hvg:50", "hvg:50"), ("ERBB2, CD74,KRT19", ["ERBB2", "CD74", "KRT19"]),
                       ("ERBB2 CD74", ["ERBB2", "CD74"]), ("ERBB2", ["ERBB2"])]:
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

    from napari_mclstexp._qt._layers import sample_layers
    from napari_mclstexp._qt._worker import TaskPanel
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


def test_domains_on_whole_slide_predictions(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle, tmp_path):
    """A pathologist with only an H&E slide has no spots: Domains and Export offered only spot layers,
    so whole-slide predictions could not be clustered nor sent to QuPath/CSV.  They now give a domain
    map (one label per tile, aligned with the prediction, legend) and both export, one row per tile."""
    import json

    import anndata as ad
    import pandas as pd
    from napari.layers import Labels

    from napari_mclstexp.sample import image_path

    viewer = make_napari_viewer()
    dock = viewer.window.add_plugin_dock_widget
    load = dock("napari-mclstexp", "Load")[1]
    with qtbot.waitSignal(load.task.finished, timeout=60_000):
        load.load(slide=str(image_path(synthetic_samples[2])), spots="")
    predict = dock("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(tiny_bundle))
    predict.mode.setCurrentText("whole slide")
    predict.step.setValue(64)
    with qtbot.waitSignal(predict.task.finished, timeout=60_000) as blocker:
        predict.predict()
    pred = blocker.args[0]
    dense = viewer.layers[f"predicted {pred.var_names[0]}"]
    domains = dock("napari-mclstexp", "Domains")[1]
    domains.target.select(dense)
    domains.k.setValue(3)
    with qtbot.waitSignal(domains.task.finished, timeout=60_000) as blocker:
        domains.run()
    labels, _ = blocker.args[0]
    layer = viewer.layers["SYN3 domains"]  # named after the slide: Explore renames the dense layer
    assert isinstance(layer, Labels)
    rows, cols = pred.obs["array_row"].to_numpy(), pred.obs["array_col"].to_numpy()
    assert np.array_equal(layer.data[rows, cols], labels + 1) and (layer.data > 0).sum() == pred.n_obs
    assert np.allclose(layer.scale, dense.scale) and np.allclose(layer.translate, dense.translate)
    assert len(domains.legend.entries) == 3 and "domain" not in pred.obs
    # another gene in Explore renames the dense layer; finding domains again replaces the map
    explore = dock("napari-mclstexp", "Explore")[1]
    explore.target.select(dense)
    explore.set_gene(str(pred.var_names[1]))
    with qtbot.waitSignal(domains.task.finished, timeout=60_000):
        domains.run()
    assert [lyr.name for lyr in viewer.layers if isinstance(lyr, Labels)] == ["SYN3 domains"]
    layer = viewer.layers["SYN3 domains"]
    export = dock("napari-mclstexp", "Export")[1]
    export.layer.select(layer)
    table = pd.read_csv(export.export(".csv", str(tmp_path / "tiles.csv")))
    assert table["domain"].tolist() == labels.tolist()
    # the predictions themselves export too (the Export widget listed only spot layers)
    export.layer.select(dense)
    assert export.layer.layer() == dense  # (widgets see napari proxies: == not is)
    table = pd.read_csv(export.export(".csv", str(tmp_path / "predicted.csv")))
    assert len(table) == pred.n_obs and np.allclose(table[["x", "y"]], pred.obsm["spatial"])
    geo = json.loads(export.export(".geojson", str(tmp_path / "tiles.geojson")).read_text())
    assert len(geo["features"]) == pred.n_obs
    assert ad.read_h5ad(export.export(".h5ad", str(tmp_path / "tiles.h5ad"))).n_obs == pred.n_obs


def test_prediction_at_measured_spots_is_scored(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle):
    """Predicting on a held-out section with measured counts, the biologist's next question is "how
    good?": the widgets had no evaluation.  Predict at spots now reports the paper's metrics against
    the measured counts (and keeps them in the predictions' provenance)."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp._qt._layers import spots_layer
    from napari_mclstexp.analysis.metrics import evaluate

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


def test_explore_follows_new_predictions(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle):
    """After Predict, the new layer was coloured by the panel's first gene with no colour bar and no
    word of which gene it was; an open Explore kept its old (or no) layer.  Explore now follows the
    new predictions (gene, colour bar) and Predict says which gene is shown."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp._qt._layers import spots_layer

    viewer = make_napari_viewer()
    add_layer_tuples(viewer, [spots_layer(synthetic_samples[2])])
    dock = viewer.window.add_plugin_dock_widget
    explore = dock("napari-mclstexp", "Explore")[1]
    predict = dock("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(tiny_bundle))
    assert explore.target.currentText() == "SYN3 spots"
    with qtbot.waitSignal(predict.task.finished, timeout=60_000) as blocker:
        predict.predict()
    gene = str(blocker.args[0].var_names[0])
    assert explore.target.currentText() == "SYN3 spots predicted" and explore.gene == gene
    assert explore.colorbar.title.text().startswith(gene)
    assert f"showing {gene}" in predict.info.text()


def test_saved_predictions_open_as_predictions(synthetic_samples, tiny_bundle, tmp_path):
    """A predictions file (``mclstexp predict`` output, or a colleague's) opened as if it were measured
    counts: a grey "spots" layer that Explore normalised a second time, and whole-slide tiles as dots.
    They now open as predictions: spots coloured by the first gene, tiles as the dense image."""
    from napari_mclstexp._qt.load import load_layers
    from napari_mclstexp._reader import read_h5ad_layers
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.predict.slide import grid_image, predict_whole_slide
    from napari_mclstexp.predict.spots import predict_at_spots
    from napari_mclstexp.sample import image_path

    bundle = load_bundle(tiny_bundle)
    spots = run(predict_at_spots(bundle, synthetic_samples[2], device="cpu"))
    spots.write_h5ad(tmp_path / "spots_pred.h5ad")
    tiles = run(predict_whole_slide(bundle, image_path(synthetic_samples[2]), step_px=64, device="cpu"))
    tiles.write_h5ad(tmp_path / "slide_pred.h5ad")
    for layers in (read_h5ad_layers(str(tmp_path / "spots_pred.h5ad")),
                   run(load_layers(None, str(tmp_path / "spots_pred.h5ad")))):
        assert [t[2] for t in layers] == ["image", "points"]
        data, kwargs, _ = layers[1]
        assert kwargs["metadata"]["mclstexp"]["role"] == "predicted"
        assert np.allclose(kwargs["features"]["value"], spots.X[:, 0])
        assert np.asarray(kwargs["face_color"]).shape == (spots.n_obs, 4)  # coloured, not grey
    for layers in (read_h5ad_layers(str(tmp_path / "slide_pred.h5ad")),
                   run(load_layers(None, str(tmp_path / "slide_pred.h5ad")))):
        assert [t[2] for t in layers] == ["image", "image"]
        data, kwargs, _ = layers[1]
        assert kwargs["metadata"]["mclstexp"]["role"] == "dense"
        assert np.array_equal(data, grid_image(tiles, str(tiles.var_names[0])), equal_nan=True)
        assert np.allclose(kwargs["scale"], [64, 64]) and np.allclose(kwargs["translate"], [32, 32])


def test_whole_slide_uses_the_spots_pixel_size(make_napari_viewer, qtbot, tiny_bundle, tmp_path):
    """A JPEG/PNG slide loaded with its spots knows its µm/px only through them: at spots the patches
    had the trained µm size, but over the whole slide they had the trained *pixel* size (wrong on any
    other scan resolution, silently).  Whole-slide prediction now uses the layer's µm/px too."""
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.predict.spots import patch_px_for
    from napari_mclstexp.synthetic import make_synthetic_sample

    adata = make_synthetic_sample(tmp_path, seed=6, section="HIRES", image_format="png", mpp=0.5)
    adata.write_h5ad(tmp_path / "HIRES.h5ad")
    viewer = make_napari_viewer()
    dock = viewer.window.add_plugin_dock_widget
    load = dock("napari-mclstexp", "Load")[1]
    with qtbot.waitSignal(load.task.finished, timeout=60_000):
        load.load(slide=str(tmp_path / "HIRES.png"), spots=str(tmp_path / "HIRES.h5ad"))
    predict = dock("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(tiny_bundle))
    predict.mode.setCurrentText("whole slide")
    with qtbot.waitSignal(predict.task.finished, timeout=60_000) as blocker:
        predict.predict()
    pred = blocker.args[0]
    expected = patch_px_for(load_bundle(tiny_bundle), 0.5)
    assert expected == 2 * load_bundle(tiny_bundle).patch_px
    assert int(pred.uns["mclstexp"]["grid"]["patch_px"]) == expected
    assert predict.streamed_tiles == pred.n_obs  # the streaming grid matched the engine's


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
    with pytest.raises(InputError, match="SYN2: no H&E slide.*Load → Slide.*untick"):
        run(train_and_save([synthetic_samples[0], bare], "quick", epochs=1, genes="hvg:8", device="cpu",
                           out=str(tmp_path / "m.mclst")))
