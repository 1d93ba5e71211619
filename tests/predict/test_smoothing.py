"""Neighbour smoothing: the lattice graph, the blend, the weight chosen on held-out data, use in prediction."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.predict.smoothing import (
    ALPHAS,
    bundle_alpha,
    choose_alpha,
    neighbour_graph,
    smooth,
    smooth_sections,
)
from napari_mclstexp.predict.spots import predict_at_spots
from napari_mclstexp.progress import run


def test_square_and_hex_lattices_have_8_and_6_neighbours():
    cols, rows = np.meshgrid(np.arange(5), np.arange(5))
    sq = neighbour_graph(np.c_[cols.ravel(), rows.ravel()] * 200.0)  # any unit: the spacing is measured
    deg = sq.getnnz(axis=1).reshape(5, 5)
    assert deg[2, 2] == 8 and deg[0, 0] == 3 and deg[0, 2] == 5
    np.testing.assert_allclose(np.asarray(sq.sum(axis=1)).ravel(), 1.0, rtol=1e-6)
    # Visium: odd rows shifted by half a spacing, rows √3/2 apart
    r, c = np.meshgrid(np.arange(7), np.arange(7), indexing="ij")
    xy = np.c_[(c + 0.5 * (r % 2)).ravel(), (r * np.sqrt(3) / 2).ravel()]
    hexg = neighbour_graph(xy)
    assert hexg.getnnz(axis=1).reshape(7, 7)[3, 3] == 6


def test_blend_keeps_isolated_points_and_averages_neighbours():
    xy = np.array([[0, 0], [1, 0], [2, 0], [50, 50]], float)
    pred = np.array([[0.0], [3.0], [6.0], [9.0]], np.float32)
    g = neighbour_graph(xy)
    np.testing.assert_array_equal(smooth(pred, g, 0.0), pred)
    full = smooth(pred, g, 1.0)
    np.testing.assert_allclose(full[:, 0], [3.0, 3.0, 3.0, 9.0])  # the isolated spot keeps its value
    np.testing.assert_allclose(smooth(pred, g, 0.5)[:, 0], [1.5, 3.0, 4.5, 9.0])


def test_weight_is_chosen_by_held_out_accuracy(rng):
    cols, rows = np.meshgrid(np.arange(20), np.arange(20))
    xy = np.c_[cols.ravel(), rows.ravel()].astype(float)
    truth = np.stack([np.sin(xy[:, 0] / 4 + g) + np.cos(xy[:, 1] / 5 - g) for g in range(6)], axis=1)
    noisy = truth + rng.normal(scale=1.0, size=truth.shape)
    sections = np.repeat(["a", "b"], len(xy) // 2)
    chosen = choose_alpha(noisy, truth, xy, sections)
    assert chosen["alpha"] > 0.3 and chosen["alpha"] in ALPHAS
    assert chosen["scores"][str(chosen["alpha"])] > chosen["scores"]["0.0"]
    assert choose_alpha(truth, truth, xy, sections)["alpha"] == 0.0  # exact predictions need no help
    # no neighbour across sections: two sections at the same place are smoothed apart
    two = smooth_sections(noisy, np.r_[xy[:200], xy[:200]], np.repeat(["a", "b"], 200), 0.5)
    np.testing.assert_allclose(two[:200], smooth(noisy[:200], neighbour_graph(xy[:200]), 0.5), rtol=1e-5)


def test_bundle_alpha_switch(tiny_bundle):
    assert bundle_alpha(tiny_bundle) == 0.0  # chosen by nobody: off
    b = tiny_bundle.__class__(
        **{**tiny_bundle.__dict__, "metadata": {**tiny_bundle.metadata, "smoothing": {"alpha": 0.5}}}
    )
    assert bundle_alpha(b) == 0.5 and bundle_alpha(b, False) == 0.0 and bundle_alpha(b, 0.2) == 0.2


def test_smoothing_uses_only_the_predicted_sections_image(tiny_bundle, synthetic_samples):
    bundle = tiny_bundle.__class__(
        **{**tiny_bundle.__dict__, "metadata": {**tiny_bundle.metadata, "smoothing": {"alpha": 0.5}}}
    )
    test = synthetic_samples[2]
    pred = run(predict_at_spots(bundle, test, PredictOptions(device="cpu")))
    raw = run(predict_at_spots(bundle, test, PredictOptions(device="cpu", smooth=False)))
    assert not np.allclose(pred.X, raw.X)  # smoothing is on
    assert pred.uns["mclstexp"]["neighbour_alpha"] == pytest.approx(0.5)
    expected = smooth(np.asarray(raw.X), neighbour_graph(test.obsm["spatial"]), 0.5)
    np.testing.assert_allclose(pred.X, expected, rtol=1e-5, atol=1e-6)
    # the test section's measured counts play no part
    changed = test.copy()
    changed.X = np.random.default_rng(0).poisson(5.0, size=changed.shape).astype(np.float32)
    np.testing.assert_array_equal(run(predict_at_spots(bundle, changed, PredictOptions(device="cpu"))).X, pred.X)
