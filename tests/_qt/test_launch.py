"""`mclstexp demo --napari`: the viewer gets the slide, the spots, a predicted gene and the widgets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_mclstexp.workflows import demo


def _fake_result(tmp_path: Path) -> demo.DemoResult:
    """A DemoResult whose 'prediction' is the measured, normalised held-out expression (no model run)."""
    from napari_mclstexp.data.genes import expression_matrix

    sample = demo.load_demo_sample()
    _, test = demo.split_demo_sample(sample)
    pred = test.copy()
    pred.X = expression_matrix(test, list(test.var_names), "log10_1e4")
    pred.obs["uncertainty"] = np.linspace(0, 1, pred.n_obs, dtype=np.float32)
    return demo.DemoResult(
        out_dir=tmp_path,
        prediction_path=tmp_path / "p.h5ad",
        metrics_path=tmp_path / "m.json",
        figure_path=None,
        metrics={},
        genes_shown=["TUMOUR_M1"],
        prediction=pred,
        sample=sample,
    )


def test_populate_viewer(make_napari_viewer, tmp_path):
    from napari_mclstexp._qt.launch import PANEL, populate_viewer

    viewer = make_napari_viewer()
    result = _fake_result(tmp_path)
    info = populate_viewer(viewer, result)
    assert info["gene"] == "TUMOUR_M1"
    names = [layer.name for layer in viewer.layers]
    assert names == info["layers"] and len(names) == 3
    slide, spots, predicted = viewer.layers
    assert slide.multiscale and slide.rgb and slide.level_shapes[0][:2].tolist() == [4096, 4096]
    assert len(spots.data) == result.sample.n_obs
    assert len(predicted.data) == result.prediction.n_obs
    # the overlay follows the gene: tumour spots are brighter (viridis: high = yellow, more red+green)
    tumour = result.prediction.obs["annotation"].astype(str).to_numpy() == "tumour"
    brightness = predicted.face_color[:, :2].sum(axis=1)
    assert brightness[tumour].mean() > brightness[~tumour].mean() + 0.3
    # one dock, the panel, on its Explore step with the overlaid gene (not seven docks in a column)
    assert info["widgets"] == [PANEL]
    assert len(viewer.window._dock_widgets) == 1 and PANEL in " ".join(viewer.window._dock_widgets)
    from napari_mclstexp._qt.panel import McLSTExpPanel

    inner = next(iter(viewer.window._dock_widgets.values())).widget()
    panel = inner if isinstance(inner, McLSTExpPanel) else inner.findChild(McLSTExpPanel)
    assert panel.tabs.tabText(panel.tabs.currentIndex()) == "Explore"
    assert panel.explore.gene == "TUMOUR_M1"
