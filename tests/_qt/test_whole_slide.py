"""Whole-slide prediction from the widget: tiles stream into an Image layer; Explore swaps genes."""

from __future__ import annotations

import numpy as np


def test_whole_slide_streams_tiles_and_explore_swaps(qtbot, whole_slide_panels):
    from napari_mclstexp.predict.slide import grid_image

    viewer, predict = whole_slide_panels(32)
    with qtbot.waitSignal(predict.task.finished, timeout=120_000) as blocker:
        assert predict.predict() is not None
    pred = blocker.args[0]
    assert pred is not None and pred.n_obs > 0
    assert predict.streamed_tiles == pred.n_obs  # every tile was drawn while streaming
    names = [layer.name for layer in viewer.layers]
    assert not any("streaming" in n for n in names)
    (dense,) = [lyr for lyr in viewer.layers if lyr.name.endswith("predicted tiles")]
    grid = pred.uns["mclstexp"]["grid"]
    assert dense.data.shape == tuple(grid["shape"]) == (16, 16)
    assert np.isfinite(dense.data).sum() == pred.n_obs
    assert np.allclose(dense.scale, [32, 32]) and np.allclose(dense.translate, [16, 16])
    assert dense.colorbar.visible

    explore = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore")[1]
    explore.target.select(dense)
    explore.refresh_genes()
    explore.set_gene("MARK2_1")
    assert np.array_equal(dense.data, grid_image(pred, "MARK2_1"), equal_nan=True)
    # the layer holds every gene: it keeps its name (exports take it); the canvas names the gene
    assert dense.contrast_limits == list(explore.limits) and dense.name.endswith("predicted tiles")
    assert viewer.canvas.overlays.text.text.startswith("MARK2_1") and dense.colorbar.visible
    # a cancelled run keeps what it drew, labelled as partial, and says so
    with qtbot.waitSignal(predict.task.finished, timeout=60_000) as blocker:
        assert predict.predict() is not None
        predict.task.cancel_button.click()
    assert blocker.args == [None] and "cancelled" in predict.task.status.text()
    partial = [layer for layer in viewer.layers if layer.name.endswith("(partial)")]
    assert len(partial) == 1 and np.isfinite(partial[0].data).sum() < pred.n_obs
