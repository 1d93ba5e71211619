"""Explore's region review runs in a worker: the viewer stays live, Cancel stops it, a second Rank genes
replaces the running review, and the table arrives ranked by the chosen statistic."""

from __future__ import annotations

import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest

STEP_PX = 100  # tile pitch, full-res px
ROWS, COLS = 250, 200  # 50,000 whole-slide tiles
GENES = 300


@pytest.fixture
def big_prediction():
    """A whole-slide prediction of 50,000 tiles with smooth values and genes 0–2 up in the left third."""
    rng = np.random.default_rng(0)
    rows, cols = (a.ravel() for a in np.mgrid[0:ROWS, 0:COLS])
    X = rng.normal(1.0, 0.1, size=(len(rows), GENES)).astype(np.float32)
    X[cols < COLS // 3, :3] += 0.5
    pred = ad.AnnData(X, var=pd.DataFrame(index=[f"G{i}" for i in range(GENES)]))
    pred.obs_names = [f"t{i}" for i in range(len(rows))]
    pred.obs["array_row"], pred.obs["array_col"] = rows, cols
    pred.obsm["spatial"] = np.stack([cols, rows], axis=1).astype(float) * STEP_PX + STEP_PX / 2
    pred.uns["mclstexp"] = {
        "bundle": {"genes": list(pred.var_names)},
        "mode": "whole_slide",
        "normalization": "log10_1e4",
        "grid": {"step_px": STEP_PX, "origin_xy": [0.0, 0.0], "shape": [ROWS, COLS]},
    }
    return pred


def _explore_with_region(make_napari_viewer, pred):
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import data_layer

    viewer = make_napari_viewer()
    (layer,) = add_layer_tuples(viewer, [data_layer(pred, None)])
    explore = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore")[1]
    explore.target.select(layer)
    explore.regions.draw_region()
    # a rectangle over columns 10–50 and rows 20–200 of the tile grid (world = px: no µm scale)
    add_rectangle(viewer.layers["region"], *(v * STEP_PX for v in (20, 200, 10, 50)))
    return viewer, explore


def add_rectangle(layer, r0: float, r1: float, c0: float, c1: float) -> None:
    """A rectangle given in world coordinates (the region layer's scale follows the target's)."""
    world = np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0]], float)
    layer.add_polygons([(world - np.asarray(layer.translate)) / np.asarray(layer.scale)])


class _Ticks:
    """A 10 ms QTimer recording the longest gap between its ticks (the longest the GUI thread was busy)."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.times: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.times.append(time.perf_counter()))
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return float(np.diff(self.times).max()) if len(self.times) > 1 else float("inf")


def test_review_of_a_big_prediction_keeps_the_event_loop_running(make_napari_viewer, qtbot, big_prediction):
    viewer, explore = _explore_with_region(make_napari_viewer, big_prediction)
    panel = explore.regions
    ticks = _Ticks()
    with qtbot.waitSignal(panel.task.finished, timeout=120_000) as blocker:
        worker = panel.rank()
        assert worker is not None and panel.task.running  # rank() returned at once: the work is elsewhere
        n_before = len(ticks.times)
    ticks.stop()
    table = blocker.args[0]
    assert len(ticks.times) - n_before >= 5  # the timer kept firing while the statistics ran
    assert table is panel.table and table["class"].unique().tolist() == ["region"]
    inside = table["n_inside"].iloc[0]
    assert inside == 180 * 40  # tile centres strictly inside the rectangle
    assert set(table["gene"].head(3)) == {"G0", "G1", "G2"}  # planted up in the left third
    assert table["log2_fold_change"].is_monotonic_decreasing
    assert panel.table_widget.rowCount() == 15 and panel.table_widget.item(0, 1).text() in {"G0", "G1", "G2"}
    assert panel.task.status.text() == "Rank genes: done"
    # another statistic reorders the table without computing again
    panel.rank_by.setCurrentText("z")
    panel.rank_by.activated.emit(panel.rank_by.currentIndex())
    assert panel.table["z"].is_monotonic_decreasing and not panel.task.running


def test_cancel_stops_the_review_and_a_second_click_replaces_it(make_napari_viewer, qtbot, big_prediction):
    viewer, explore = _explore_with_region(make_napari_viewer, big_prediction)
    panel = explore.regions
    with qtbot.waitSignal(panel.task.finished, timeout=120_000) as blocker:
        assert panel.rank() is not None
        panel.task.cancel_button.click()
    assert blocker.args[0] is None and panel.table is None
    assert "cancelled" in panel.task.status.text()

    # Rank genes while a review runs: that one is cancelled, a fresh one (with a new region) completes
    results = []
    panel.task.finished.connect(results.append)
    assert panel.rank() is not None
    add_rectangle(viewer.layers["region"], 0, 500, 0, 500)
    assert panel.rank() is None  # queued behind the cancel
    qtbot.waitUntil(lambda: len(results) == 2, timeout=120_000)
    assert results[0] is None and results[1] is not None
    assert results[1]["n_inside"].iloc[0] == 180 * 40 + 25  # both rectangles of the region layer
    assert not panel.task.running and panel.table is results[1]
