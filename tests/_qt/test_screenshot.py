"""A visible viewer with the demo slide, predicted gene overlay and docked widgets: the README picture.

``MCLSTEXP_UPDATE_SCREENSHOT=1 make test`` rewrites ``docs/images/screenshot.png``; otherwise the
picture goes to a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

README_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "screenshot.png"


@pytest.fixture(scope="module")
def demo_bundle():
    """The shipped demo model: it must load (a model change that breaks it fails here, not silently)."""
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.workflows.demo import sample_data_dir

    shipped = sample_data_dir() / "demo_quick.mclst"
    load_bundle(shipped).build_model("cpu")
    return shipped


def test_screenshot_shows_tissue_and_prediction(make_napari_viewer, qtbot, demo_bundle, tmp_path):
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp._sample_data import make_demo_sample

    viewer = make_napari_viewer(show=True, title="napari-mclstexp")
    viewer.window._qt_window.resize(1500, 950)
    add_layer_tuples(viewer, make_demo_sample())
    predict_dock, predict = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Predict")
    predict.bundle_path.setText(str(demo_bundle))
    predict.mode.setCurrentText("at spots")
    with qtbot.waitSignal(predict.task.finished, timeout=120_000) as blocker:
        predict.predict()
    assert blocker.args[0] is not None
    _, explore = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore", tabify=True)
    predicted = [layer for layer in viewer.layers if layer.name.endswith("predicted")][0]
    explore.target.select(predicted)
    explore.refresh_genes()
    explore.colormap.setCurrentText("magma")
    explore.set_gene("TUMOUR_M1")
    explore.search.setText("TUMOUR")
    viewer.layers["demo spots (true regions)"].visible = False
    viewer.layers.selection.active = predicted
    viewer.reset_view()
    qtbot.wait(500)

    canvas = np.asarray(viewer.screenshot(canvas_only=True, flash=False))
    rgb = canvas[..., :3].astype(float)
    background = np.all(np.abs(rgb - rgb[0, 0]) < 8, axis=-1)
    tissue = ~background
    assert tissue.mean() > 0.3, f"only {tissue.mean():.0%} of the canvas shows something"
    assert rgb[tissue].std(axis=0).mean() > 20  # texture and colour, not a flat/black canvas
    # the magma overlay puts dark purple and bright orange/yellow spots on the pink slide
    assert (rgb[tissue][:, 0] > 200).mean() > 0.05

    window = np.asarray(viewer.screenshot(canvas_only=False, flash=False))
    assert window.shape[0] > canvas.shape[0] or window.shape[1] > canvas.shape[1]
    from PIL import Image

    # the README picture is only replaced on request: a test run leaves the working tree clean
    target = README_IMAGE if os.environ.get("MCLSTEXP_UPDATE_SCREENSHOT") == "1" else tmp_path / "screenshot.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(window).save(target)
    assert target.stat().st_size > 50_000
