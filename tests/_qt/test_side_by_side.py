"""Side by side: the predictions beside the measured spots in one view; napari's reset view fits both halves
(the tissue), not the whole slide."""

from __future__ import annotations

import numpy as np

from .test_trust import _dock, _predict_spots


def _extent(*layers) -> np.ndarray:
    """World (2, 2) extent of ``layers`` together: min and max (row, col)."""
    extents = [layer.extent.world[:, -2:] for layer in layers]
    return np.array([np.min([e[0] for e in extents], axis=0), np.max([e[1] for e in extents], axis=0)])


def _tissue_fill(viewer, *layers) -> float:
    """Fraction of the canvas the layers' spots span on the limiting axis after the camera's zoom."""
    extent = _extent(*layers)
    span = (extent[1] - extent[0]) * viewer.camera.zoom  # canvas px
    return float(np.max(span / np.asarray(viewer.canvas.size)))


def test_reset_view_fits_both_halves(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle):
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
    measured = viewer.layers["SYN3 spots"]
    # the predictions sit beside (or below) the measured spots, over the slide's twin, without overlapping
    apart = _extent(predicted)[0] - _extent(measured)[1]
    assert np.max(apart) > 0, apart
    twin = viewer.layers["SYN3 slide (beside)"]
    np.testing.assert_array_less(_extent(twin)[0] - 1e-6, _extent(predicted)[0])
    np.testing.assert_array_less(_extent(predicted)[1], _extent(twin)[1] + 1e-6)
    assert np.max(_extent(twin)[0] - _extent(measured)[1]) > 0  # the twin (cut to the tissue) covers no measured spot
    viewer.camera.zoom *= 0.1  # the user wanders off, then presses napari's home button
    viewer.reset_view()
    fill = _tissue_fill(viewer, measured, predicted)
    assert 0.8 <= fill <= 1.0, fill
    both = _extent(measured, predicted)
    np.testing.assert_allclose(viewer.camera.center[-2:], both.mean(axis=0), atol=0.03 * np.max(both[1] - both[0]))
    for title in ("SYN3 spots (measured title)", "SYN3 spots predicted (predicted title)"):  # below its half
        half = measured if "measured" in title else predicted
        point = viewer.layers[title].extent.world[0, -2:]
        assert point[0] > _extent(half)[1][0] and abs(point[1] - _extent(half)[0][1]) < 1.0, title
    explore.side_by_side.setChecked(False)
    assert np.allclose(predicted.translate, 0)  # back in place
    viewer.reset_view()  # off again: napari's own fit (the whole slide) is left alone
    assert _tissue_fill(viewer, predicted) < 0.6


def test_side_by_side_is_built_in_steps_and_can_be_stopped_halfway(
    make_napari_viewer, qtbot, synthetic_samples, tiny_bundle
):
    """The view goes in one layer (or the move) per turn of the event loop, nothing selected on the way;
    turned off while half built, the viewer is as before: same layers, order, visibility, places."""
    viewer = make_napari_viewer(show=True)
    _predict_spots(viewer, qtbot, synthetic_samples[2], tiny_bundle)
    explore = _dock(viewer, "Explore")
    predicted = viewer.layers["SYN3 spots predicted"]
    explore.target.select(predicted)
    viewer.layers.selection.active = predicted

    def state() -> list:
        return [(layer.name, layer.visible, tuple(layer.translate)) for layer in viewer.layers]

    before = state()
    explore.side_by_side.setChecked(True)
    assert state() == before  # nothing yet: steps are queued
    steps = explore.side.steps
    n_layers = len(viewer.layers)
    while steps.busy and np.allclose(predicted.translate, 0):  # one step at a time, up to the move
        n = len(viewer.layers)
        steps._run_one()
        assert len(viewer.layers) - n <= 1  # one layer a step
        assert viewer.layers.selection.active is predicted  # added layers are not selected
    assert not np.allclose(predicted.translate, 0) and len(viewer.layers) == n_layers + 3  # twin, two titles
    explore.side_by_side.setChecked(False)
    assert state() == before
    for n_steps in range(1, 10):  # stopped at every point of the build (before and after the move)
        explore.side_by_side.setChecked(True)
        for _ in range(n_steps):
            steps._run_one()
        explore.side_by_side.setChecked(False)
        assert not explore.side.active, n_steps
        assert state() == before, n_steps


def test_draw_region_ends_side_by_side(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle):
    """A region is drawn over the spots in place: with the predictions moved beside, its outline would
    cover other spots than it seems to, so Draw region turns the view off first."""
    viewer = make_napari_viewer()
    _predict_spots(viewer, qtbot, synthetic_samples[2], tiny_bundle)
    explore = _dock(viewer, "Explore")
    predicted = viewer.layers["SYN3 spots predicted"]
    explore.target.select(predicted)
    explore.side_by_side.setChecked(True)
    qtbot.waitUntil(lambda: not explore.side.steps.busy, timeout=20_000)
    assert not np.allclose(predicted.translate, 0)
    explore.regions.draw_region()
    assert not explore.side_by_side.isChecked() and not explore.side.active
    assert np.allclose(predicted.translate, 0) and viewer.layers.selection.active.name == "region"
