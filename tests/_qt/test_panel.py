"""Issue 24: one mclSTExp panel (Data → Train → Predict → Explore → Domains → Export) that fits a
1366×768 window, whose steps start on the section in view, and that says what happened on the canvas
and in its toasts."""

from __future__ import annotations

import pandas as pd
import pytest
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QPushButton, QScrollArea

from napari_mclstexp.layer_data import KEY, layers_with_role, predicted_spots_layer

WAIT_MS = 120_000
STEPS = ("Data", "Train", "Predict", "Explore", "Domains", "Export")


def open_panel(viewer):
    return viewer.window.add_plugin_dock_widget("napari-mclstexp", "mclSTExp")[1]


def load_three(viewer, qtbot, h5ad_paths):
    """The three synthetic sections loaded one by one; only the last (SYN3) left visible and selected."""
    load = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Load")[1]
    for path in h5ad_paths:
        with qtbot.waitSignal(load.task.finished, timeout=WAIT_MS):
            load.load(slide="", spots=str(path))
    for layer in viewer.layers:
        layer.visible = layer.name.startswith("SYN3")
    viewer.layers.selection.active = viewer.layers["SYN3 spots"]
    return load


def fake_prediction(sample, genes: int = 12):
    """A 'prediction' of the first ``genes`` genes at the sample's spots (no model needed)."""
    pred = sample[:, :genes].copy()
    pred.obs = pd.DataFrame(index=pred.obs_names)
    pred.uns["mclstexp"] = {"bundle": "fake.mclst"}
    return pred


def add_prediction(viewer, sample, source: str, genes: int = 12):
    pred = fake_prediction(sample, genes)
    data, kwargs, _ = predicted_spots_layer(pred, gene=str(pred.var_names[0]), name=f"{source[:4]} predicted")
    kwargs["metadata"][KEY]["source"] = source
    return viewer.add_points(data, **kwargs)


# --- 1. one panel that fits a small screen ------------------------------------------------------------


def test_the_panel_walks_six_steps_and_fits_1366x768(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    panel = open_panel(viewer)
    window.showNormal()
    window.resize(1366, 768)
    qtbot.waitUntil(lambda: panel.ready, timeout=WAIT_MS)  # the steps are built one per event-loop turn
    qtbot.wait(200)
    assert [panel.tabs.tabText(i) for i in range(panel.tabs.count())] == list(STEPS)
    for i, step in enumerate(STEPS):
        panel.tabs.setCurrentIndex(i)
        qtbot.wait(50)
        page = panel.tabs.currentWidget()
        for area in page.findChildren(QScrollArea):
            assert not area.horizontalScrollBar().isVisible(), f"{step} scrolls sideways"
        buttons = [b for b in page.findChildren(QPushButton) if b.isVisibleTo(page)]
        assert buttons or step == "Explore", step
        for b in buttons:
            left = b.mapTo(window, b.rect().topLeft())
            right = b.mapTo(window, b.rect().bottomRight())
            assert 0 <= left.x() and right.x() <= window.width(), (step, b.text(), left.x(), right.x())
        # the step's main buttons and status line: in view, without scrolling
        for w in panel.in_view(step):
            assert not w.visibleRegion().isEmpty(), (step, w)
            bottom = w.mapTo(window, w.rect().bottomLeft()).y()
            assert bottom <= window.height(), (step, w, bottom)
    assert window.height() <= 768


def test_the_six_widgets_stay_in_the_plugins_menu():
    from npe2 import PluginManager

    names = [w.display_name for w in PluginManager.instance().get_manifest("napari-mclstexp").contributions.widgets]
    assert names[0] == "mclSTExp" and {"Load", "Train", "Predict", "Explore", "Domains", "Export"} <= set(names)


# --- 2. one shared state: the section in view ---------------------------------------------------------


def test_steps_start_on_the_section_in_view(make_napari_viewer, qtbot, h5ad_paths, synthetic_samples):
    viewer = make_napari_viewer()
    load_three(viewer, qtbot, h5ad_paths)
    panel = open_panel(viewer)
    assert panel.predict.spots.currentText() == "SYN3 spots"
    assert panel.predict.slide.currentText() == "SYN3 slide"
    assert panel.explore.target.currentText() == "SYN3 spots"
    assert panel.export.layer.currentText() == "SYN3 spots"
    ticked = [panel.train.sections.item(i) for i in range(panel.train.sections.count())]
    assert {i.text(): i.checkState() == Qt.CheckState.Checked for i in ticked} == {
        "SYN1 spots": True,
        "SYN2 spots": True,
        "SYN3 spots": False,
    }
    # new predictions of the section in view become the current prediction of every step
    layer = add_prediction(viewer, synthetic_samples[2], "SYN3 spots")
    viewer.layers.selection.active = layer
    assert panel.state.section == "SYN3"
    assert panel.explore.target.currentText() == layer.name
    assert panel.export.layer.currentText() == layer.name
    assert panel.domains.target.currentText() == layer.name


def test_predict_flags_a_section_that_was_in_training(make_napari_viewer, qtbot, h5ad_paths, tiny_bundle):
    viewer = make_napari_viewer()
    load_three(viewer, qtbot, h5ad_paths)
    panel = open_panel(viewer)
    panel.predict.bundle_path.setText(str(tiny_bundle))
    panel.predict.spots.setCurrentText("SYN1 spots")  # the tiny bundle trained on SYN1 and SYN2
    with qtbot.waitSignal(panel.predict.task.finished, timeout=WAIT_MS) as blocker:
        panel.predict.predict()
    assert blocker.args[0] is not None
    assert "in training" in panel.predict.info.text()
    panel.predict.spots.setCurrentText("SYN3 spots")
    with qtbot.waitSignal(panel.predict.task.finished, timeout=WAIT_MS):
        panel.predict.predict()
    assert "in training" not in panel.predict.info.text()


# --- 3. a gene the model lacks ---------------------------------------------------------------------


def test_explore_says_a_gene_is_not_in_the_model_and_offers_the_measured_one(
    make_napari_viewer, qtbot, h5ad_paths, synthetic_samples, notes
):
    viewer = make_napari_viewer()
    load_three(viewer, qtbot, h5ad_paths)
    layer = add_prediction(viewer, synthetic_samples[2], "SYN3 spots", genes=12)
    panel = open_panel(viewer)
    explore = panel.explore
    explore.target.select(layer)
    explore.refresh_genes()
    explore.search.setText("NOISE20")  # measured at SYN3, not in the 12-gene 'model'
    explore.choose_top_match()
    said = explore.missing.text.text()
    assert "NOISE20" in said and "not" in said and "12" in said, said
    assert explore.missing.offer.isVisibleTo(explore) and "measured" in explore.missing.offer.text()
    explore.missing.offer.click()
    assert explore.target.currentText() == "SYN3 spots" and explore.gene == "NOISE20"
    assert viewer.canvas.overlays.text.text.startswith("NOISE20")


# --- 4. the canvas follows the selected layer -----------------------------------------------------------


def test_canvas_follows_domains_and_back(make_napari_viewer, qtbot, h5ad_paths, synthetic_samples):
    viewer = make_napari_viewer()
    load_three(viewer, qtbot, h5ad_paths)
    layer = add_prediction(viewer, synthetic_samples[2], "SYN3 spots")
    panel = open_panel(viewer)
    panel.explore.follow(layer.name, "MARK0_0")
    assert viewer.canvas.overlays.text.text.startswith("MARK0_0")
    panel.domains.target.select(layer)
    with qtbot.waitSignal(panel.domains.task.finished, timeout=WAIT_MS):
        panel.domains.run()
    domains = layers_with_role(viewer, "domains")[-1]
    assert domains.name.startswith("SYN3")
    assert viewer.layers.selection.active is domains
    assert "MARK0_0" not in viewer.canvas.overlays.text.text
    assert not layer.face_colorbar.visible
    legend = panel.canvas_legend
    assert not legend.isHidden() and [name for name, _ in legend.entries][:2] == ["Domain 0", "Domain 1"]
    viewer.layers.selection.active = layer  # back to the gene
    assert viewer.canvas.overlays.text.text.startswith("MARK0_0")
    assert layer.face_colorbar.visible and legend.isHidden()
    assert not domains.visible  # the domain colours no longer cover the gene the title names


def test_tile_domains_are_named_by_section():
    from napari_mclstexp._qt.domains import domain_layer_name

    assert domain_layer_name("C4 predicted tiles", "5714_HE_BT_D2", dense=True) == "C4 domains"
    assert domain_layer_name("predicted ERBB2", "C4", dense=True) == "C4 domains"
    assert domain_layer_name("SYN3.png predicted tiles", "SYN3", dense=True) == "SYN3 domains"
    assert domain_layer_name("C4 predicted", "C4", dense=False) == "C4 predicted domains"


# --- 5. messages ------------------------------------------------------------------------------------------


def test_exports_toast_and_an_old_error_goes(make_napari_viewer, qtbot, h5ad_paths, tmp_path, notes):
    from napari_mclstexp._qt import _toasts

    viewer = make_napari_viewer()
    load_three(viewer, qtbot, h5ad_paths)
    panel = open_panel(viewer)
    assert panel.export.export(".csv") is None  # no folder chosen yet
    assert any("output folder" in str(n.message) for n in notes)
    assert _toasts.shown()[-1][0] == "error"
    panel.export.folder.setText(str(tmp_path))
    out = panel.export.export(".csv")
    assert out is not None and out.exists()
    assert any(f"saved {out.name}" in str(n.message) for n in notes)
    assert [kind for kind, _ in _toasts.shown()] == ["info"], "the old error toast is still up"


def test_an_empty_folder_says_it_is_empty(make_napari_viewer, qtbot, tmp_path, notes):
    viewer = make_napari_viewer()
    panel = open_panel(viewer)
    empty = tmp_path / "nothing"
    empty.mkdir()
    with qtbot.waitSignal(panel.load.task.finished, timeout=WAIT_MS):
        panel.load.load(slide="", spots=str(empty))
    assert panel.load.task.status.text().startswith(f"error: folder {empty} is empty")


def test_the_gene_mismatch_warning_leads_with_the_cause(synthetic_samples):
    from napari_mclstexp._qt._predict_text import other_genes_warning

    pred = fake_prediction(synthetic_samples[0])
    measured = synthetic_samples[0][:, 12:].copy()
    path = "/a/very/long/path/to/some/folder/of/models/" + "x" * 80 + "/model.mclst"
    said = other_genes_warning(pred, measured, "SYN1 spots", path)
    assert said.startswith("the model predicts none of the genes measured in SYN1 spots"), said
    assert said.index("model.mclst") > 60


# --- 6. export only the panel's genes ---------------------------------------------------------------------


def test_measured_spots_export_the_panels_genes_unless_all_asked(
    make_napari_viewer, qtbot, h5ad_paths, synthetic_samples, tmp_path
):
    viewer = make_napari_viewer()
    load_three(viewer, qtbot, h5ad_paths)
    add_prediction(viewer, synthetic_samples[2], "SYN3 spots", genes=5)
    panel = open_panel(viewer)
    export = panel.export
    export.layer.setCurrentText("SYN3 spots")
    export.folder.setText(str(tmp_path))
    assert not export.all_genes.isChecked()
    table = pd.read_csv(export.export(".csv"))
    genes = [c for c in table.columns if c.startswith(("MARK", "NOISE"))]
    assert genes == [str(g) for g in synthetic_samples[2].var_names[:5]]
    export.all_genes.setChecked(True)
    export.stem.setText("all")
    table = pd.read_csv(export.export(".csv"))
    assert len([c for c in table.columns if c.startswith(("MARK", "NOISE"))]) == 24


# --- 7. one progress bar through training ----------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_training_shows_one_bar_with_an_eta_to_the_end(make_napari_viewer, qtbot, h5ad_paths, tmp_path):
    tiny = {"patch_px": 32, "input_px": 16, "batch_size": 64, "embed_dim": 16, "k": 10}

    viewer = make_napari_viewer()
    load_three(viewer, qtbot, h5ad_paths)
    panel = open_panel(viewer)
    train = panel.train
    train.config_overrides = tiny
    train.epochs.setValue(2)
    train.out.setText(str(tmp_path / "m.mclst"))
    seen: list[tuple[int, int, str]] = []
    task = train.task
    task.bar.valueChanged.connect(lambda v: seen.append((task.bar.maximum(), v, task.status.text())))
    with qtbot.waitSignal(task.finished, timeout=WAIT_MS) as blocker:
        train.train()
    assert blocker.args[0] is not None
    values = [v for m, v, _ in seen if m == 1000]
    assert len(values) >= 3 and values == sorted(values), seen  # one bar, per mille, never back
    stages = {s.split(" ·")[0] for m, _, s in seen if m == 1000}
    assert len(stages) >= 2, stages  # training and the finishing stages on the same bar
    on_bar = [s for m, _, s in seen if m == 1000]
    first_epoch = next((i for i, s in enumerate(on_bar) if s.startswith("train")), len(on_bar))
    # the stages after the epochs (not the patches before them, which may show 0 % before any rate is known)
    finishing = [s for s in on_bar[first_epoch:] if not s.startswith("train")]
    assert any("ETA" in s for s in finishing) or not finishing, finishing


def test_hvg_plus_markers_in_the_train_field(make_napari_viewer):
    viewer = make_napari_viewer()
    panel = open_panel(viewer)
    panel.train.genes.setText("hvg:200+ERBB2,CD74")
    assert panel.train._genes_spec() == "hvg:200+ERBB2,CD74"
