"""A visible viewer with the demo slide, predicted gene overlay and the docked panel draws real pixels.

The pictures of the README and the user guide are made by ``scripts/make_guide_screenshots.py``.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def demo_bundle():
    """The shipped demo model: it must load (a model change that breaks it fails here, not silently)."""
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.workflows.demo import sample_data_dir

    shipped = sample_data_dir() / "demo_quick.mclst"
    load_bundle(shipped).build_model("cpu")
    return shipped


def test_screenshot_shows_tissue_and_prediction(make_napari_viewer, qtbot, demo_bundle, tmp_path):
    """A whole-slide prediction of the demo slide: the gene named on the canvas with its colour bar,
    the tissue mask's outline, and Explore's gene list sorted by held-out reliability."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp._qt._gene_list import UNRELIABLE
    from napari_mclstexp._sample_data import make_demo_sample
    from napari_mclstexp.bundle import load_bundle, save_bundle
    from napari_mclstexp.progress import run
    from napari_mclstexp.workflows.demo import load_demo_sample
    from napari_mclstexp.workflows.reliability import iter_gene_reliability

    bundle = load_bundle(demo_bundle)
    adata = load_demo_sample()
    part = adata[adata.obs["demo_split"] == "train"].copy()
    bundle.metadata["reliability"] = run(iter_gene_reliability(bundle, [part], device="cpu"))
    save_bundle(bundle, tmp_path / "demo_reliable.mclst")

    viewer = make_napari_viewer(show=True, title="napari-mclstexp")
    viewer.window._qt_window.resize(1500, 950)
    add_layer_tuples(viewer, make_demo_sample())
    viewer.layers["demo spots (true regions)"].visible = False
    predict_dock, predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")
    predict.bundle_path.setText(str(tmp_path / "demo_reliable.mclst"))
    predict.mode.setCurrentText("whole slide")
    predict.step.setValue(128)
    with qtbot.waitSignal(predict.task.finished, timeout=300_000) as blocker:
        predict.predict()
    assert blocker.args[0] is not None
    _, explore = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore", tabify=True)
    dense = [layer for layer in viewer.layers if layer.name.endswith("predicted tiles")][0]
    tissue = [layer for layer in viewer.layers if layer.name.endswith("tissue")][0]
    assert tissue.contour > 0 and dense.colorbar.visible
    explore.colormap.setCurrentText("magma")
    texts = [explore.proxy.index(i, 0).data() for i in range(explore.proxy.rowCount())]
    assert explore.gene == texts[0].split(" ")[0]  # the most reliable gene, first in the list
    assert viewer.canvas.overlays.text.text.startswith(explore.gene) and any(UNRELIABLE in t for t in texts)
    viewer.layers.selection.active = dense
    viewer.reset_view()
    qtbot.wait(500)

    canvas = np.asarray(viewer.screenshot(canvas_only=True, flash=False))
    rgb = canvas[..., :3].astype(float)
    background = np.all(np.abs(rgb - rgb[0, 0]) < 8, axis=-1)
    tissue = ~background
    assert tissue.mean() > 0.3, f"only {tissue.mean():.0%} of the canvas shows something"
    assert rgb[tissue].std(axis=0).mean() > 20  # texture and colour, not a flat/black canvas
    # the magma overlay puts dark purple and bright orange/yellow tiles on the pink slide
    assert (rgb[tissue][:, 0] > 200).mean() > 0.05

    window = np.asarray(viewer.screenshot(canvas_only=False, flash=False))
    assert window.shape[0] > canvas.shape[0] or window.shape[1] > canvas.shape[1]
    from PIL import Image

    target = tmp_path / "screenshot.png"
    Image.fromarray(window).save(target)
    assert target.stat().st_size > 50_000
