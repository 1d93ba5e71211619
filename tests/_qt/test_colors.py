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


def _switch_genes(n: int = 100_000):
    """Colour a Points layer of ``n`` points by 7 genes in turn; the layer, the values and each switch's seconds."""
    rng = np.random.default_rng(0)
    X = rng.random((n, 8), dtype=np.float32)
    layer = Points(rng.random((n, 2)) * 1000, size=5, features={"value": np.zeros(n, np.float32)})
    times = []
    for g in range(1, 8):
        t0 = time.perf_counter()
        set_points_values(layer, X[:, g], "magma", auto_limits(X[:, g]))
        times.append(time.perf_counter() - t0)
    return layer, X, times


def test_gene_switch_100k_points_colours_every_point():
    layer, X, _ = _switch_genes()
    assert np.allclose(layer.features["value"].to_numpy(), X[:, 7])
    expected = values_to_rgba(X[:, 7], "magma", auto_limits(X[:, 7]))
    assert np.allclose(layer.face_color, expected, atol=1e-6)


@pytest.mark.timing
def test_gene_switch_100k_points_is_fast():
    _, _, times = _switch_genes()
    assert np.median(times) < 0.1, f"gene switch took {np.median(times) * 1e3:.0f} ms"


@pytest.mark.timing
def test_explore_gene_switch_is_fast(make_napari_viewer, synthetic_samples):
    """Explore's own work for a gene switch (values, limits, colours), as the workflow test once asserted."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import spots_layer

    viewer = make_napari_viewer()
    (layer,) = add_layer_tuples(viewer, [spots_layer(synthetic_samples[0])])
    explore = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore")[1]
    explore.target.select(layer)
    times = [explore.set_gene(str(gene)) for gene in synthetic_samples[0].var_names[:8]]
    assert max(times) < 100, f"gene switches took {times} ms"


def test_set_points_values_resets_features_when_sizes_differ():
    layer = Points(np.zeros((3, 2)), features={"other": [1, 2, 3]})
    set_points_values(layer, np.array([1.0, 2.0, 3.0]), "viridis", (1.0, 3.0), column="value")
    assert layer.features["value"].tolist() == pytest.approx([1.0, 2.0, 3.0])
