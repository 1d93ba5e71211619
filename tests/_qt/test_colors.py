"""Gene value → RGBA colours and the cost of a gene switch on a Points layer."""

from __future__ import annotations

import time

import numpy as np
import pytest
from napari.layers import Points

from napari_mclstexp._qt._colors import (
    NAN_RGBA,
    auto_limits,
    colormap_lut,
    set_points_values,
    values_to_rgba,
)


def test_values_to_rgba_clips_and_marks_nan():
    lut = colormap_lut("viridis")
    rgba = values_to_rgba(np.array([-5.0, 0.0, 5.0, 10.0, 99.0, np.nan]), "viridis", (0.0, 10.0))
    assert rgba.shape == (6, 4) and rgba.dtype == np.float32
    assert np.allclose(rgba[0], lut[0]) and np.allclose(rgba[1], lut[0])
    assert np.allclose(rgba[3], lut[-1]) and np.allclose(rgba[4], lut[-1])
    assert np.allclose(rgba[2], lut[127], atol=0.02)
    assert np.allclose(rgba[5], NAN_RGBA)


def test_auto_limits_robust_and_never_equal():
    v = np.r_[np.zeros(98), 1.0, 1000.0]
    lo, hi = auto_limits(v)
    assert lo == 0.0 and hi < 1000.0
    assert auto_limits(np.full(5, 3.0)) == (3.0, 4.0)
    assert auto_limits(np.array([np.nan])) == (0.0, 1.0)


def test_gene_switch_100k_points_is_fast():
    rng = np.random.default_rng(0)
    n = 100_000
    X = rng.random((n, 8), dtype=np.float32)
    layer = Points(rng.random((n, 2)) * 1000, size=5, features={"value": np.zeros(n, np.float32)})
    times = []
    for g in range(1, 8):
        t0 = time.perf_counter()
        set_points_values(layer, X[:, g], "magma", auto_limits(X[:, g]))
        times.append(time.perf_counter() - t0)
    assert np.allclose(layer.features["value"].to_numpy(), X[:, 7])
    expected = values_to_rgba(X[:, 7], "magma", auto_limits(X[:, 7]))
    assert np.allclose(layer.face_color, expected, atol=1e-6)
    assert np.median(times) < 0.1, f"gene switch took {np.median(times) * 1e3:.0f} ms"


def test_set_points_values_resets_features_when_sizes_differ():
    layer = Points(np.zeros((3, 2)), features={"other": [1, 2, 3]})
    set_points_values(layer, np.array([1.0, 2.0, 3.0]), "viridis", (1.0, 3.0), column="value")
    assert layer.features["value"].tolist() == pytest.approx([1.0, 2.0, 3.0])
