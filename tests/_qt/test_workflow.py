"""End to end through the widgets on tiny synthetic data:
load → train 1 epoch → predict → explore (switch genes, side by side, region) → domains → export."""

from __future__ import annotations

import json
import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from napari_mclstexp._qt._colors import values_to_rgba
from napari_mclstexp.coords import xy_to_rowcol
from napari_mclstexp.layer_data import layer_adata, layers_with_role

TINY = {"patch_px": 32, "input_px": 16, "batch_size": 64, "embed_dim": 16, "k": 10}
WAIT_MS = 180_000


def dock(viewer, name):
    return viewer.window.add_plugin_dock_widget("napari-mclstexp", name)[1]


def run_task(qtbot, widget, start):
    """Start a widget task and wait for it; returns the result (``None`` after an error)."""
    with qtbot.waitSignal(widget.task.finished, timeout=WAIT_MS) as blocker:
        assert start() is not None
    return blocker.args[0]


def test_load_train_predict_explore_domains_export(
    make_napari_viewer, qtbot, synthetic_samples, h5ad_paths, tmp_path, notes
):
    viewer = make_napari_viewer()

    # --- Load: slide (lazy) + spots at (row, col), sized by the spot diameter
    load = dock(viewer, "Load")
    for path in h5ad_paths:
        layers = run_task(qtbot, load, lambda p=path: load.load(spots=str(p)))
        assert [t[2] for t in layers] == ["image", "points"]
    spots = layers_with_role(viewer, "spots")
    assert [layer.name for layer in spots] == ["SYN1 spots", "SYN2 spots", "SYN3 spots"]
    ref = synthetic_samples[2]
    assert np.allclose(spots[2].data, xy_to_rowcol(ref.obsm["spatial"]))
    assert np.allclose(spots[2].size, 0.55 * 40.0)
    slides = layers_with_role(viewer, "slide")
    assert len(slides) == 3 and slides[0].rgb and slides[0].data.shape[:2] == (512, 512)

    # --- Train one epoch on SYN1 + SYN2 and save the bundle
    train = dock(viewer, "Train")
    train.set_checked(["SYN1 spots", "SYN2 spots"])
    train.config_overrides = dict(TINY)
    train.epochs.setValue(1)
    assert train.device.currentText() == "cpu" or train.device.count() > 1
    out = tmp_path / "model.mclst"
    train.out.setText(str(out))
    saved = run_task(qtbot, train, train.train)  # the workflow's SavedModel
    assert saved is not None, notes
    bundle = saved.bundle
    assert out.is_file() and len(bundle.genes) == 24
    # training ends with the genes' held-out reliability, saved in the bundle (issue 16)
    assert train.task.last_event.stage == "reliability" and np.isfinite(bundle.metadata["history"][-1]["loss"])
    assert len(bundle.metadata["reliability"]["r"]) == 24

    # --- Predict at the held-out SYN3 spots
    predict = dock(viewer, "Predict")
    predict.bundle_path.setText(str(out))
    predict.mode.setCurrentText("at spots")
    predict.spots.select(viewer.layers["SYN3 spots"])
    pred = run_task(qtbot, predict, predict.predict)
    assert pred.n_obs == ref.n_obs and pred.n_vars == 24
    predicted = viewer.layers["SYN3 spots predicted"]
    uncertainty = viewer.layers["SYN3 spots uncertainty"]
    assert layer_adata(predicted) is pred and not uncertainty.visible
    assert np.allclose(uncertainty.features["uncertainty"], pred.obs["uncertainty"])

    # --- Explore: switch genes (colours = colormap of values), side by side, uncertainty
    explore = dock(viewer, "Explore")
    explore.target.select(predicted)
    explore.refresh_genes()
    assert explore.model.stringList() == list(pred.var_names)
    explore.search.setText("mark1")
    assert explore.proxy.rowCount() == 3
    for gene in ("MARK0_0", "MARK1_2"):
        ms = explore.set_gene(gene)
        values = np.asarray(pred[:, gene].X).ravel()
        assert np.allclose(predicted.features["value"], values)
        assert np.allclose(predicted.face_color, values_to_rgba(values, "viridis", explore.limits), atol=1e-6)
        assert np.isfinite(ms)  # coloured (NaN: gene not found); its time: test_colors.py, -m timing
    assert explore.colorbar.title.text().startswith("MARK1_2")
    # the value under the mouse is the current gene's prediction
    status = predicted.get_status(position=tuple(predicted.data[5]), world=False)
    shown = re.search(r"value: ([-+.\deE]+)", status["coordinates"]).group(1)
    assert float(shown) == pytest.approx(values[5], rel=1e-2)
    explore.side_by_side.setChecked(True)
    qtbot.waitUntil(lambda: not explore.side.steps.busy, timeout=20_000)  # built in steps
    measured = viewer.layers["SYN3 spots"]
    visible = [layer.name for layer in viewer.layers if layer.visible]
    assert visible == [
        "SYN3 slide",
        "SYN3 spots",
        "SYN3 slide (beside)",
        "SYN3 spots predicted",
        "SYN3 spots (measured title)",
        "SYN3 spots predicted (predicted title)",
    ]
    predicted_layer = viewer.layers["SYN3 spots predicted"]
    shift = np.asarray(predicted_layer.translate)
    assert np.count_nonzero(shift) == 1 and np.allclose(measured.translate, 0)  # beside or below, not over
    lo = predicted_layer.extent.world[0] - measured.extent.world[1]
    assert np.max(lo) > 0  # no predicted spot over a measured one
    assert not np.allclose(measured.face_color, measured.face_color[0])  # coloured by the gene too
    assert np.allclose(measured.features["value"], explore.values(measured, "MARK1_2"))
    explore.side_by_side.setChecked(False)
    assert np.allclose(predicted_layer.translate, 0) and "SYN3 slide (beside)" not in viewer.layers
    assert viewer.layers["SYN1 spots"].visible
    explore.show_uncertainty.setChecked(True)
    assert uncertainty.visible

    # --- Region review: a polygon over the top half of the slide
    explore.regions.draw_region()
    viewer.layers["region"].add_polygons([np.array([[0, 0], [0, 512], [256, 512], [256, 0]], float)])
    table = run_task(qtbot, explore.regions, explore.regions.rank)
    n_in = int((ref.obsm["spatial"][:, 1] < 256).sum())
    assert table["n_inside"].iloc[0] == n_in and table["n_outside"].iloc[0] == ref.n_obs - n_in
    assert table["log2_fold_change"].is_monotonic_decreasing
    csv = explore.regions.save_csv(str(tmp_path / "region.csv"))
    assert pd.read_csv(csv)["gene"].tolist() == table["gene"].tolist()

    # --- Domains with ARI/NMI against the synthetic regions
    domains = dock(viewer, "Domains")
    domains.target.select(predicted)
    domains.k.setValue(4)
    assert domains.truth.currentText() == "annotation"
    labels, scores = run_task(qtbot, domains, domains.run)
    assert set(np.unique(labels)) <= {0, 1, 2, 3} and {"ari", "nmi"} <= set(scores)
    assert "ARI" in domains.scores.text() and len(domains.legend.entries) == 4
    dom_layer = viewer.layers["SYN3 spots predicted domains"]
    assert dom_layer.features["domain"].tolist() == labels.tolist()

    # --- Export: h5ad, CSV and GeoJSON parse back, with the domains
    export = dock(viewer, "Export")
    export.layer.select(predicted)
    back = ad.read_h5ad(export.export(".h5ad", str(tmp_path / "pred.h5ad")))
    assert np.allclose(back.X, pred.X) and back.obs["domain"].astype(int).tolist() == labels.tolist()
    assert "domain" not in pred.obs  # the user's predictions are not modified
    table = pd.read_csv(export.export(".csv", str(tmp_path / "pred.csv")))
    assert table["domain"].tolist() == labels.tolist()
    assert np.allclose(table[list(pred.var_names)].to_numpy(), pred.X, rtol=1e-4, atol=1e-6)
    geo = json.loads(export.export(".geojson", str(tmp_path / "pred.geojson")).read_text())
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == pred.n_obs
    first = geo["features"][0]["properties"]
    assert first["classification"]["name"] == f"Domain {labels[0]}"
    assert first["measurements"]["MARK0_0"] == pytest.approx(float(pred.X[0, 0]), rel=1e-5)
    shot = export.screenshot(str(tmp_path / "shot.png"), canvas_only=True)
    from PIL import Image

    assert Image.open(shot).size[0] > 0
    assert not [n for n in notes if getattr(n, "severity", "") == "error"], notes
