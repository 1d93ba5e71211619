"""Overlays a pathologist can trust (issue 16): tissue mask, per-gene reliability, layer order, domain
colours, what the colours show, gene search, tiles, errors, and the small things.  Each test drives the
widgets as a user would and asserts on layers and files."""

from __future__ import annotations

import json

import numpy as np
import pytest


def _dock(viewer, name):
    return viewer.window.add_plugin_dock_widget("napari-mclstexp", name)[1]


@pytest.fixture(scope="module")
def reliable_bundle(tiny_bundle, tmp_path_factory):
    """The tiny bundle with a made-up reliability record: MARK1_0 best, NOISE genes below threshold."""
    from napari_mclstexp.bundle import load_bundle, save_bundle

    bundle = load_bundle(tiny_bundle)
    genes = list(bundle.genes)
    r = [0.9 if g == "MARK1_0" else 0.5 if g.startswith("MARK") else 0.05 for g in genes]
    bundle.metadata["reliability"] = {
        "genes": genes,
        "r": r,
        "threshold": 0.3,
        "method": "leave-one-section-out retrieval",
        "n_spots": 10,
    }
    path = tmp_path_factory.mktemp("rel") / "reliable.mclst"
    save_bundle(bundle, path)
    return path


def _predict_spots(viewer, qtbot, sample, bundle):
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import sample_layers

    add_layer_tuples(viewer, sample_layers(sample))
    predict = _dock(viewer, "Predict")
    predict.bundle_path.setText(str(bundle))
    with qtbot.waitSignal(predict.task.finished, timeout=60_000) as blocker:
        predict.predict()
    assert blocker.args[0] is not None
    return predict, blocker.args[0]


def test_tissue_mask_is_shown_editable_and_used(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle):
    """Item 1: the mask appears as a Labels layer before prediction; erasing part of it removes
    those tiles from the next prediction."""
    from napari.layers import Labels

    from napari_mclstexp.sample import image_path

    viewer = make_napari_viewer()
    load = _dock(viewer, "Load")
    with qtbot.waitSignal(load.task.finished, timeout=60_000):
        load.load(slide=str(image_path(synthetic_samples[2])), spots="")
    predict = _dock(viewer, "Predict")
    predict.bundle_path.setText(str(tiny_bundle))
    predict.mode.setCurrentText("whole slide")
    predict.step.setValue(32)
    with qtbot.waitSignal(predict.task.finished, timeout=60_000):
        predict.detect_tissue()
    (tissue,) = [lyr for lyr in viewer.layers if isinstance(lyr, Labels)]
    assert tissue.name.endswith("tissue") and tissue.contour > 0 and (tissue.data > 0).mean() > 0.5
    # its painting overlays (built in steps of their own after it went in) are there: the brush outline shows
    assert all(tissue._overlays[name].visible for name in ("polygon", "brush_stroke"))
    # detecting again takes the new mask into the same layer (its place and the user's opacity stay)
    tissue.opacity, where = 0.5, viewer.layers.index(tissue)
    tissue.data[:] = 0
    with qtbot.waitSignal(predict.task.finished, timeout=60_000):
        predict.detect_tissue()
    assert [lyr for lyr in viewer.layers if isinstance(lyr, Labels)] == [tissue]
    assert viewer.layers.index(tissue) == where and tissue.opacity == 0.5 and (tissue.data > 0).mean() > 0.5
    with qtbot.waitSignal(predict.task.finished, timeout=60_000) as blocker:
        predict.predict()
    full = blocker.args[0]
    # the user erases the left half of the tissue and predicts again
    tissue.data[:, : tissue.data.shape[1] // 2] = 0
    with qtbot.waitSignal(predict.task.finished, timeout=60_000) as blocker:
        predict.predict()
    half = blocker.args[0]
    assert 0 < half.n_obs < full.n_obs
    assert half.obsm["spatial"][:, 0].min() > 512 / 2 - 32  # no tile centre in the erased half


def test_reliability_sorts_marks_and_names_the_best_gene(
    make_napari_viewer, qtbot, synthetic_samples, reliable_bundle, tmp_path
):
    """Items 2 and 6: predictions carry per-gene reliability; Explore (opened after predicting) lists
    genes by it with a marker below the threshold and shows the best gene, named on the canvas with a
    colour bar; exports carry the reliability."""
    from napari_mclstexp._qt._gene_list import GENE_ROLE, UNRELIABLE

    viewer = make_napari_viewer()
    predict, pred = _predict_spots(viewer, qtbot, synthetic_samples[2], reliable_bundle)
    assert pred.uns["mclstexp"]["reliability"]["r"][list(pred.var_names).index("MARK1_0")] == 0.9
    layer = viewer.layers["SYN3 spots predicted"]
    assert viewer.layers.selection.active == layer  # not the hidden uncertainty layer (item 10)
    assert layer.face_colorbar.visible and viewer.canvas.overlays.text.text.startswith("MARK1_0")
    assert "r 0.90" in viewer.canvas.overlays.text.text and "showing MARK1_0" in predict.info.text()
    explore = _dock(viewer, "Explore")
    assert explore.gene == "MARK1_0" and explore.limits[1] > explore.limits[0] != 0
    rows = [explore.proxy.index(i, 0) for i in range(explore.proxy.rowCount())]
    assert rows[0].data(GENE_ROLE) == "MARK1_0"
    texts = [i.data() for i in rows]
    assert all(UNRELIABLE in t for t in texts if t.startswith("NOISE"))
    assert not any(UNRELIABLE in t for t in texts if t.startswith("MARK"))
    export = _dock(viewer, "Export")
    export.layer.select(layer)
    out = export.export(".csv", str(tmp_path / "p.csv"))
    import pandas as pd

    genes = pd.read_csv(tmp_path / "p.genes.csv")
    assert out.is_file() and genes.set_index("gene").loc["MARK1_0", "r"] == pytest.approx(0.9)
    assert not genes.set_index("gene").loc["NOISE16", "reliable"]
    geo = json.loads(export.export(".geojson", str(tmp_path / "p.geojson")).read_text())
    assert geo["mclstexp"]["gene_reliability"]["MARK1_0"]["reliable"] is True


def test_side_by_side_off_restores_layer_order(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle):
    """Item 3: turning side by side off gives back the order from before; halves are titled."""
    viewer = make_napari_viewer()
    _predict_spots(viewer, qtbot, synthetic_samples[2], tiny_bundle)
    explore = _dock(viewer, "Explore")
    explore.target.select(viewer.layers["SYN3 spots predicted"])
    before = [lyr.name for lyr in viewer.layers]
    assert before.index("SYN3 slide") < before.index("SYN3 spots") < before.index("SYN3 spots predicted")
    explore.side_by_side.setChecked(True)
    qtbot.waitUntil(lambda: not explore.side.steps.busy, timeout=20_000)  # built in steps
    titles = [lyr.text.values[0] for lyr in viewer.layers if lyr.name.endswith("title)")]
    assert sorted(titles) == ["measured", "predicted"] and explore.side.active
    explore.side_by_side.setChecked(False)
    assert [lyr.name for lyr in viewer.layers] == before and not explore.side.active


def test_domain_colours_agree_between_legend_and_geojson(
    make_napari_viewer, qtbot, synthetic_samples, tiny_bundle, tmp_path
):
    """Item 4: the GeoJSON colour of "Domain i" is the legend's colour of domain i."""
    viewer = make_napari_viewer()
    _predict_spots(viewer, qtbot, synthetic_samples[2], tiny_bundle)
    domains = _dock(viewer, "Domains")
    domains.k.setValue(5)
    with qtbot.waitSignal(domains.task.finished, timeout=60_000):
        domains.run()
    legend = dict(domains.legend.entries)
    export = _dock(viewer, "Export")
    export.layer.select(viewer.layers["SYN3 spots predicted domains"])
    geo = json.loads(export.export(".geojson", str(tmp_path / "d.geojson")).read_text())
    seen = {
        f["properties"]["classification"]["name"]: tuple(f["properties"]["classification"]["color"])
        for f in geo["features"]
    }
    assert len(seen) == 5 and all(seen[name] == legend[name] for name in seen)


def test_gene_search_puts_the_exact_match_first_and_enter_picks_it(make_napari_viewer, qtbot, synthetic_sample):
    """Item 7: typing "KRT8" lists KRT8 before KRT86 (and other names containing it); Enter colours by it."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp._qt._gene_list import GENE_ROLE
    from napari_mclstexp.layer_data import spots_layer

    names = list(synthetic_sample.var_names)
    names[:4] = ["AKRT8", "KRT86", "KRT81", "KRT8"]
    synthetic_sample.var_names = names
    viewer = make_napari_viewer()
    add_layer_tuples(viewer, [spots_layer(synthetic_sample)])
    explore = _dock(viewer, "Explore")
    explore.search.setText("krt8")
    shown = [explore.proxy.index(i, 0).data(GENE_ROLE) for i in range(explore.proxy.rowCount())]
    assert shown == ["KRT8", "KRT81", "KRT86", "AKRT8"]  # exact, prefix (by name), contains
    qtbot.keyClick(explore.search, "\r")
    assert explore.gene == "KRT8"


def test_whole_slide_tiles_reach_qupath_as_touching_squares(
    make_napari_viewer, qtbot, synthetic_samples, tiny_bundle, tmp_path
):
    """Item 8: tiles are exported as squares of the grid step (no gaps), not 24-sided circles."""
    from napari_mclstexp.sample import image_path

    viewer = make_napari_viewer()
    load = _dock(viewer, "Load")
    with qtbot.waitSignal(load.task.finished, timeout=60_000):
        load.load(slide=str(image_path(synthetic_samples[2])), spots="")
    predict = _dock(viewer, "Predict")
    predict.bundle_path.setText(str(tiny_bundle))
    predict.mode.setCurrentText("whole slide")
    predict.step.setValue(64)
    with qtbot.waitSignal(predict.task.finished, timeout=60_000) as blocker:
        predict.predict()
    pred = blocker.args[0]
    (dense,) = [lyr for lyr in viewer.layers if lyr.name.endswith("predicted tiles")]
    assert dense.colorbar.visible and viewer.canvas.overlays.text.text.split(" ")[0] in pred.var_names
    export = _dock(viewer, "Export")
    export.layer.select(dense)
    geo = json.loads(export.export(".geojson", str(tmp_path / "t.geojson")).read_text())
    ring = np.asarray(geo["features"][0]["geometry"]["coordinates"][0])
    assert ring.shape == (5, 2) and np.allclose(np.ptp(ring, axis=0), 64)
    assert np.allclose(ring[0], ring[-1])


def test_errors_say_the_problem_first_in_the_status_line(make_napari_viewer, tmp_path, notes):
    """Item 9: the toast and the widget's status line start with the problem, the file comes last."""
    viewer = make_napari_viewer()
    predict = _dock(viewer, "Predict")
    bad = tmp_path / "deep" / "folder" / "model.mclst"
    bad.parent.mkdir(parents=True)
    bad.write_text("not a zip")
    predict.bundle_path.setText(str(bad))
    assert predict.predict() is None
    status = predict.task.status.text()
    assert status.startswith("error: ") and not status.startswith(f"error: {bad}") and str(bad) in status
    message = str(notes[-1].message)
    assert not message.startswith(str(bad)) and message.endswith(str(bad))
    predict.bundle_path.setText("")
    predict.predict()
    assert "bundle" in predict.task.status.text()


def test_small_things(make_napari_viewer, qtbot, h5ad_paths, synthetic_samples):
    """Item 10: slides named after the section, measured spots let the tissue show, scale bar on,
    no GPU button on a CPU machine, spots coloured by a reference label column with a legend."""
    import torch

    viewer = make_napari_viewer()
    load = _dock(viewer, "Load")
    with qtbot.waitSignal(load.task.finished, timeout=60_000):
        load.load(slide="", spots=str(h5ad_paths[2]))
    assert "SYN3 slide" in viewer.layers and viewer.canvas.overlays.scale_bar.visible
    spots = viewer.layers["SYN3 spots"]
    assert np.all(spots.face_color[:, 3] == 0) and np.all(spots.border_color[:, 3] > 0)
    predict = _dock(viewer, "Predict")
    assert predict.release_button.isHidden() == (not torch.cuda.is_available())
    explore = _dock(viewer, "Explore")
    explore.target.select(spots)
    explore.refresh_genes()
    assert "annotation" in [explore.labels.itemText(i) for i in range(explore.labels.count())]
    names = explore.colour_by_labels("annotation")
    truth = sorted(set(synthetic_samples[2].obs["annotation"].astype(str)))
    assert names == truth and [e[0] for e in explore.legend.entries] == truth
    colours = {tuple(np.round(c[:3] * 255).astype(int)) for c in spots.face_color}
    assert colours == {e[1] for e in explore.legend.entries}
