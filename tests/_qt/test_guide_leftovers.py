"""What the user guide's screenshots showed wrong (issue 24): whole-slide layers named after the image
file, a long title under the colour bar, tiles hiding the spots being explored, a region outline a band wide
on tiles, and Domains fixed at k = 4 on a five-region slide."""

from __future__ import annotations

import numpy as np

from .test_trust import _dock


def _slide_with_spots(viewer, qtbot, h5ad_paths, synthetic_samples):
    """Load SYN3's slide and its spots through the two fields of Load, as the guide does."""
    from napari_mclstexp.sample import image_path

    load = _dock(viewer, "Load")
    with qtbot.waitSignal(load.task.finished, timeout=60_000):
        load.load(slide=str(image_path(synthetic_samples[2])), spots=str(h5ad_paths[2]))
    return load


def _predict(viewer, qtbot, bundle, mode: str):
    predict = _dock(viewer, "Predict")
    predict.bundle_path.setText(str(bundle))
    predict.mode.setCurrentText(mode)
    if mode == "whole slide":
        predict.step.setValue(32)
    with qtbot.waitSignal(predict.task.finished, timeout=60_000) as blocker:
        predict.predict()
    assert blocker.args[0] is not None
    qtbot.waitUntil(lambda: not predict.steps.busy, timeout=20_000)
    return predict


def test_section_of_a_slide_layer():
    from napari_mclstexp.layer_data import section_of

    assert section_of("C4 slide") == "C4"
    assert section_of("demo_slide.ome.tif") == "demo_slide"
    assert section_of("SYN3.PNG") == "SYN3" and section_of("C4.1 slide") == "C4.1"


def test_whole_slide_layers_are_named_by_section(make_napari_viewer, qtbot, h5ad_paths, synthetic_samples, tiny_bundle):
    """Failing first: a slide opened with its spots kept its file name (``SYN3.png``), and so did the
    tissue mask and the tiles made over it (``SYN3.png predicted tiles``), while the spots said ``SYN3``."""
    viewer = make_napari_viewer()
    _slide_with_spots(viewer, qtbot, h5ad_paths, synthetic_samples)
    _predict(viewer, qtbot, tiny_bundle, "whole slide")
    names = [layer.name for layer in viewer.layers]
    assert {"SYN3 slide", "SYN3 spots", "SYN3 tissue", "SYN3 predicted tiles"} <= set(names), names


def test_a_long_title_ends_left_of_the_colour_bar(make_napari_viewer, qtbot, synthetic_samples):
    """Failing first: a title longer than the canvas is wide ran under the colour bar (top right).  Measured
    on the rendered canvas: the title's rightmost pixel lies left of the colour bar's leftmost one."""
    from napari_mclstexp._qt._canvas import show_gene
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import predicted_spots_layer

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1000, 700)
    pred = synthetic_samples[2][:, :4].copy()
    pred.X = np.asarray(pred.X.todense() if hasattr(pred.X, "todense") else pred.X, np.float32)
    (layer,) = add_layer_tuples(viewer, [predicted_spots_layer(pred, name="pred")])
    title = "EPITHELIUM_MARKER_1 · predicted (normalised) · held-out r 0.12 ⚠ unreliable"
    show_gene(viewer, layer, "EPITHELIUM_MARKER_1", "viridis", (0.0, 1.0), title)
    layer.opacity = 0.0  # only the overlays on a black canvas (a hidden layer hides its colour bar too)
    text, bar = viewer.canvas.overlays.text, layer.face_colorbar

    def shot(text_on: bool, bar_on: bool) -> np.ndarray:
        text.visible, bar.visible = text_on, bar_on
        qtbot.wait(50)
        return viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)

    blank, title_only, bar_only = shot(False, False), shot(True, False), shot(False, True)
    top = slice(0, blank.shape[0] // 3)
    title_cols = np.flatnonzero(np.abs(title_only[top] - blank[top]).sum(axis=(0, 2)) > 0)
    bar_cols = np.flatnonzero(np.abs(bar_only[top] - blank[top]).sum(axis=(0, 2)) > 0)
    assert len(title_cols) and len(bar_cols)
    assert title_cols.max() < bar_cols.min(), (title_cols.max(), bar_cols.min(), text.text)
    assert "\n" in text.text and text.text.replace("\n", " ") == title  # wrapped, nothing lost


def test_spots_explored_are_not_hidden_by_tiles(make_napari_viewer, qtbot, h5ad_paths, synthetic_samples, tiny_bundle):
    """Failing first: after a whole-slide prediction the tiles (and the tissue mask) lay over the spot
    predictions, so Explore coloured spots nobody could see.  Selecting the spots hides what covers them —
    the canvas shows what its title and colour bar name — and the tiles are one eye-click away."""
    from napari_mclstexp._qt._canvas_follow import follow_selection

    viewer = make_napari_viewer()
    follow_selection(viewer)  # as the panel does
    _slide_with_spots(viewer, qtbot, h5ad_paths, synthetic_samples)
    _predict(viewer, qtbot, tiny_bundle, "at spots")
    _predict(viewer, qtbot, tiny_bundle, "whole slide")
    tiles, tissue = viewer.layers["SYN3 predicted tiles"], viewer.layers["SYN3 tissue"]
    spots = viewer.layers["SYN3 spots predicted"]
    assert tiles.visible and viewer.layers.index(tiles) > viewer.layers.index(spots)
    explore = _dock(viewer, "Explore")
    explore.target.select(spots)
    viewer.layers.selection.active = spots
    explore.set_gene(str(spots.metadata["mclstexp"]["adata"].var_names[0]))
    assert spots.visible and not tiles.visible and not tissue.visible
    viewer.layers.selection.active = tiles  # and back: the tiles show again when chosen
    tiles.visible = True
    assert tiles.visible and viewer.layers["SYN3 slide"].visible


def test_region_outline_is_thin_on_tiles_and_spots(
    make_napari_viewer, qtbot, h5ad_paths, synthetic_samples, tiny_bundle
):
    """Failing first: the outline was 2 × the layer's scale data units wide: on tiles (a pixel is a tile)
    a band wider than the tissue.  Now about 1/300 of the layer's extent on both."""
    viewer = make_napari_viewer()
    _slide_with_spots(viewer, qtbot, h5ad_paths, synthetic_samples)
    _predict(viewer, qtbot, tiny_bundle, "at spots")
    _predict(viewer, qtbot, tiny_bundle, "whole slide")
    explore = _dock(viewer, "Explore")
    for name in ("SYN3 predicted tiles", "SYN3 spots predicted"):
        if "region" in viewer.layers:
            viewer.layers.remove("region")
        target = viewer.layers[name]
        explore.target.select(target)
        region = explore.regions.region_layer()
        extent = target.extent.world[:, -2:]
        world_width = region.current_edge_width * float(region.scale[-1])
        assert 0.5 / 300 < world_width / np.max(extent[1] - extent[0]) < 2 / 300, name


def test_domains_choose_k_by_silhouette_unless_typed(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle):
    """Failing first: Domains started at k = 4 whatever the slide (four domains on the five-region demo).
    Now "auto": the k of 2–10 with the best mean silhouette, shown as "auto (k=…)"; a typed k still wins."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.analysis.domains import choose_k, domain_features
    from napari_mclstexp.layer_data import layer_adata, sample_layers

    viewer = make_napari_viewer()
    add_layer_tuples(viewer, sample_layers(synthetic_samples[2]))
    _predict(viewer, qtbot, tiny_bundle, "at spots")
    domains = _dock(viewer, "Domains")
    assert domains.k.text() == "auto"
    domains.target.select(viewer.layers["SYN3 spots predicted"])
    with qtbot.waitSignal(domains.task.finished, timeout=60_000) as blocker:
        domains.run()
    k, _ = choose_k(domain_features(layer_adata(viewer.layers["SYN3 spots predicted"]), "expression"))
    assert blocker.args[0][1]["k"] == k and len(domains.legend.entries) == k
    assert domains.k.text() == f"auto (k={k})" and "silhouette" in domains.scores.text()
    domains.k.setValue(3)
    with qtbot.waitSignal(domains.task.finished, timeout=60_000):
        domains.run()
    assert len(domains.legend.entries) == 3 and "silhouette" not in domains.scores.text()


def test_canvas_legend_keeps_its_size_when_set_again_while_shown(make_napari_viewer, qtbot):
    """Failing first: the domain layers went in unselected and the legend step selected them, so the canvas
    legend was set three times in a row; sets after the first, while the box was shown, measured labels Qt had
    not shown yet and shrank the box to 14 × 10 px (the guide's domains screenshot had no legend)."""
    from napari_mclstexp._qt._canvas_follow import follow_selection

    viewer = make_napari_viewer(show=True)
    legend = follow_selection(viewer).legend
    names, colors = [f"Domain {i}" for i in range(5)], np.array([[31, 119, 180]] * 5)
    legend.set(names, colors, [10] * 5)
    once = legend.size()
    legend.set(names, colors, [10] * 5)
    legend.set(names, colors, [12] * 5)
    qtbot.wait(50)
    assert legend.isVisible() and legend.width() >= once.width() > 100 and legend.height() >= once.height() > 40
