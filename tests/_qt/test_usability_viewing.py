"""Usability fixes found by walking the pathologist's path with real her2st data (slide, spots, model,
predict, explore, domains, export); each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.predict.options import PredictOptions
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


def test_measured_genes_outside_the_predicted_panel_can_be_explored(make_napari_viewer, synthetic_samples, notes):
    """Measured spots carry the whole transcriptome: a gene the model does not predict (or a model
    whose panel shares no gene with the sample) must still colour them, normalised over all genes,
    instead of "X is not in …" or an uncaught ``GenePanelError``."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import spots_layer

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
    qtbot.waitUntil(lambda: not explore.side.steps.busy, timeout=20_000)  # built in steps
    um = pint.get_application_registry().micrometer
    assert len(viewer.layers) == 10  # + the tissue mask and the two side-by-side titles
    for layer in viewer.layers:
        assert tuple(layer.units) == (um, um), layer.name
    assert tuple(viewer.layers.extent.units) == (um, um)


def test_predicting_with_a_model_of_other_genes_says_so(
    make_napari_viewer, qtbot, synthetic_sample, tiny_bundle, notes
):
    """The demo model (synthetic genes) on a real section predicted silently; then nothing could be
    compared with the measured spots and nobody said why.  Predicting still works (only the image is
    needed), and a warning names the bundle and the mismatch."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import spots_layer

    synthetic_sample.var_names = [f"REAL{i}" for i in range(synthetic_sample.n_vars)]
    viewer = make_napari_viewer()
    add_layer_tuples(viewer, [spots_layer(synthetic_sample)])
    predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(tiny_bundle))
    with qtbot.waitSignal(predict.task.finished, timeout=60_000) as blocker:
        predict.predict()
    assert blocker.args[0] is not None and "SYN1 spots predicted" in viewer.layers
    warned = [str(n.message) for n in notes if str(getattr(n, "severity", "")).lower().endswith("warning")]
    assert warned and "tiny.mclst" in warned[-1] and "none of the genes measured in SYN1 spots (24 genes" in warned[-1]
    assert "SYN1 spots" in warned[-1]


def test_side_by_side_never_shows_a_stale_measured_gene(make_napari_viewer, qtbot, synthetic_samples):
    """Side by side, switching to a gene the section did not measure left the measured spots in the
    previous gene's colours, beside the new gene's predictions.  They now show "no value"."""
    from napari_mclstexp._qt._colors import NAN_RGBA
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import KEY, spots_layer

    viewer = make_napari_viewer()
    adata = synthetic_samples[0]
    gene = str(adata.var_names[0])
    (measured,) = add_layer_tuples(viewer, [spots_layer(adata)])
    (predicted,) = add_layer_tuples(
        viewer, [spots_layer(_predictions(adata, [gene, "NOT_MEASURED"]), role="predicted")]
    )
    predicted.metadata[KEY]["source"] = measured.name
    explore = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore")[1]
    explore.target.select(predicted)
    explore.side_by_side.setChecked(True)
    qtbot.waitUntil(lambda: not explore.side.steps.busy, timeout=20_000)  # built in steps
    explore.set_gene(gene)
    assert np.isfinite(measured.features["value"]).all()
    explore.set_gene("NOT_MEASURED")
    assert np.isnan(measured.features["value"]).all()
    assert np.allclose(measured.face_color, NAN_RGBA)
    assert "not measured" in explore.colorbar.title.text()


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


def test_predict_at_imageless_spots_says_how_to_fix(make_napari_viewer, synthetic_sample, tiny_bundle, tmp_path, notes):
    """Predict at spots without a slide said "sample has no image (uns['spatial'][lib]['metadata']
    ['source_image_path'])": AnnData internals, no file, no way forward.  Now it says what to do."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.io.h5ad import read_sample
    from napari_mclstexp.layer_data import spots_layer

    spots_file, _ = _without_image(synthetic_sample, tmp_path)
    viewer = make_napari_viewer()
    add_layer_tuples(viewer, [spots_layer(read_sample(spots_file))])
    predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(tiny_bundle))
    assert predict.predict() is None
    message = str(notes[-1].message)
    assert "SYN1 spots" in message and "no H&E slide" in message and "Load" in message


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
    (dense,) = [lyr for lyr in viewer.layers if lyr.name.endswith("predicted tiles")]
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
    assert [lyr.name for lyr in viewer.layers if isinstance(lyr, Labels) and "tissue" not in lyr.name] == [
        "SYN3 domains"
    ]
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


def test_explore_follows_new_predictions(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle):
    """After Predict, the new layer was coloured by the panel's first gene with no colour bar and no
    word of which gene it was; an open Explore kept its old (or no) layer.  Explore now follows the
    new predictions (gene, colour bar) and Predict says which gene is shown."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import spots_layer

    viewer = make_napari_viewer()
    add_layer_tuples(viewer, [spots_layer(synthetic_samples[2])])
    dock = viewer.window.add_plugin_dock_widget
    explore = dock("napari-mclstexp", "Explore")[1]
    predict = dock("napari-mclstexp", "Predict")[1]
    predict.bundle_path.setText(str(tiny_bundle))
    assert explore.target.currentText() == "SYN3 spots"
    with qtbot.waitSignal(predict.task.finished, timeout=60_000) as blocker:
        predict.predict()
    from napari_mclstexp.analysis.reliability import best_gene

    pred = blocker.args[0]
    gene = best_gene(list(map(str, pred.var_names)), {}, pred.X)  # no reliability: the most variable
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
    spots = run(predict_at_spots(bundle, synthetic_samples[2], PredictOptions(device="cpu")))
    spots.write_h5ad(tmp_path / "spots_pred.h5ad")
    tiles = run(predict_whole_slide(bundle, image_path(synthetic_samples[2]), PredictOptions(device="cpu"), step_px=64))
    tiles.write_h5ad(tmp_path / "slide_pred.h5ad")
    for layers in (
        read_h5ad_layers(str(tmp_path / "spots_pred.h5ad")),
        run(load_layers(None, str(tmp_path / "spots_pred.h5ad"))),
    ):
        assert [t[2] for t in layers] == ["image", "points"]
        data, kwargs, _ = layers[1]
        assert kwargs["metadata"]["mclstexp"]["role"] == "predicted"
        assert np.allclose(kwargs["features"]["value"], spots.X[:, 0])
        assert np.asarray(kwargs["face_color"]).shape == (spots.n_obs, 4)  # coloured, not grey
    for layers in (
        read_h5ad_layers(str(tmp_path / "slide_pred.h5ad")),
        run(load_layers(None, str(tmp_path / "slide_pred.h5ad"))),
    ):
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
