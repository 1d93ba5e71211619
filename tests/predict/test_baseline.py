"""Colour-histogram reference: features and kNN prediction."""

from __future__ import annotations

import numpy as np

from napari_mclstexp.predict.baseline import histogram_features, histogram_knn_predict


def _solid(colour, n=1, size=8):
    return np.broadcast_to(np.asarray(colour, np.uint8), (n, size, size, 3)).copy()


def test_histogram_features_values():
    patch = _solid([0, 128, 255])
    patch[0, :4, :, 0] = 64  # half of red pixels at 64 (bin 2), half at 0 (bin 0)
    f = histogram_features(patch)
    assert f.shape == (1, 30)
    np.testing.assert_allclose(f[0, :3], [32 / 255, 128 / 255, 1.0], atol=1e-6)
    np.testing.assert_allclose(f[0, 3:6], [32 / 255, 0, 0], atol=1e-6)
    red, green, blue = f[0, 6:14], f[0, 14:22], f[0, 22:30]
    np.testing.assert_allclose(red, [0.5, 0, 0.5, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(green, np.eye(8)[4])
    np.testing.assert_allclose(blue, np.eye(8)[7])


def test_knn_predicts_from_matching_colours(rng):
    colours = np.array([[230, 150, 200], [150, 80, 170]], np.uint8)
    labels = np.repeat([0, 1, 1, 0], [20, 20, 1, 1])  # the last two are the test patches
    patches = np.stack([_solid(colours[c])[0] for c in labels])
    patches = np.clip(patches + rng.integers(-6, 7, size=patches.shape), 0, 255).astype(np.uint8)
    train, test = patches[:40], patches[40:]
    expr = np.where(labels[:40, None] == 0, [1.0, 0.0], [0.0, 1.0]).astype(np.float32)
    pred, unc = histogram_knn_predict(train, expr, test, k=5, return_uncertainty=True)
    np.testing.assert_allclose(pred, [[0, 1], [1, 0]], atol=1e-6)
    np.testing.assert_allclose(unc, 0, atol=1e-6)
    mixed = histogram_knn_predict(train, expr, test, k=40)  # everyone → a blend, still sums to 1
    np.testing.assert_allclose(mixed.sum(1), 1.0, atol=1e-5)
    assert mixed[0, 1] > mixed[0, 0]
