"""Side by side: napari's reset view fits the tissue (the spots) into each half, not the whole slide."""

from __future__ import annotations

import numpy as np

from .test_trust import _dock, _predict_spots


def _tissue_fill(viewer, layer) -> float:
    """Fraction of one grid cell the layer's spots span on the limiting axis after the camera's zoom."""
    extent = layer.extent.world
    span = (extent[1] - extent[0])[-2:] * viewer.camera.zoom  # canvas px
    return float(np.max(span / np.asarray(viewer.canvas.viewbox_size(viewer.layers))))


def test_reset_view_fits_the_tissue_in_each_half(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle):
    sample = synthetic_samples[2]
    xy = sample.obsm["spatial"]
    corner = sample[(xy[:, 0] < 200) & (xy[:, 1] < 160)].copy()  # a small tissue on a large slide
    viewer = make_napari_viewer(show=True)
    _predict_spots(viewer, qtbot, corner, tiny_bundle)
    explore = _dock(viewer, "Explore")
    predicted = viewer.layers["SYN3 spots predicted"]
    explore.target.select(predicted)
    explore.side_by_side.setChecked(True)
    qtbot.waitUntil(lambda: not explore.side.steps.busy, timeout=20_000)  # built in steps
    viewer.camera.zoom *= 0.1  # the user wanders off, then presses napari's home button
    viewer.reset_view()
    fill = _tissue_fill(viewer, predicted)
    assert 0.8 <= fill <= 1.0, fill
    # each half's centre is the tissue's centre
    extent = predicted.extent.world
    np.testing.assert_allclose(viewer.camera.center[-2:], extent.mean(axis=0)[-2:], atol=1.0)
    explore.side_by_side.setChecked(False)
    viewer.reset_view()  # off again: napari's own fit (the whole slide) is left alone
    assert _tissue_fill(viewer, predicted) < 0.6


def test_side_by_side_is_built_in_steps_and_can_be_stopped_halfway(
    make_napari_viewer, qtbot, synthetic_samples, tiny_bundle
):
    """The view goes in one layer (or the grid switch) per turn of the event loop, nothing selected on
    the way; turned off while half built, the viewer is as before: same layers, order, visibility."""
    viewer = make_napari_viewer(show=True)
    _predict_spots(viewer, qtbot, synthetic_samples[2], tiny_bundle)
    explore = _dock(viewer, "Explore")
    predicted = viewer.layers["SYN3 spots predicted"]
    explore.target.select(predicted)
    viewer.layers.selection.active = predicted
    before = [(layer.name, layer.visible) for layer in viewer.layers]
    explore.side_by_side.setChecked(True)
    assert len(viewer.layers) == len(before) and not viewer.grid.enabled  # nothing yet: steps are queued
    steps = explore.side.steps
    while steps.busy and not viewer.grid.enabled:  # one step at a time, up to the grid switch
        steps._run_one()
        assert viewer.layers.selection.active is predicted  # added layers are not selected
    assert viewer.grid.enabled and len(viewer.layers) == len(before) + 3  # twin and two titles
    explore.side_by_side.setChecked(False)
    assert [(layer.name, layer.visible) for layer in viewer.layers] == before
    for n_steps in range(1, 9):  # stopped at every point of the build (before and after the grid came on)
        explore.side_by_side.setChecked(True)
        for _ in range(n_steps):
            steps._run_one()
        explore.side_by_side.setChecked(False)
        assert not viewer.grid.enabled and not explore.side.active, n_steps
        assert [(layer.name, layer.visible) for layer in viewer.layers] == before, n_steps
