"""Explore shows measured spots on the predictions' scale exactly as the engine scores them."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp import prediction_meta
from napari_mclstexp.analysis.metrics import measured_matrix
from napari_mclstexp.data.genes import expression_matrix
from napari_mclstexp.predict.options import PredictOptions


@pytest.fixture(scope="module")
def prediction(synthetic_samples, tiny_bundle):
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.predict.spots import predict_at_spots
    from napari_mclstexp.progress import run

    return run(predict_at_spots(load_bundle(tiny_bundle), synthetic_samples[2], PredictOptions(device="cpu")))


@pytest.mark.parametrize("stored", ["counts", "normalised"])
def test_measured_values_equal_the_engines(make_napari_viewer, synthetic_samples, prediction, stored):
    """``normalised``: a sample saved already normalised must not be normalised a second time."""
    from napari_mclstexp._qt._common import add_layer_tuples
    from napari_mclstexp.layer_data import predicted_spots_layer, spots_layer

    measured = synthetic_samples[2].copy()
    panel = list(map(str, prediction.var_names))
    if stored == "normalised":
        measured = measured[:, panel].copy()
        measured.X = expression_matrix(measured, panel, "log10_1e4")
    viewer = make_napari_viewer()
    spots, _ = add_layer_tuples(viewer, [spots_layer(measured), predicted_spots_layer(prediction, name="pred")])
    explore = viewer.window.add_plugin_dock_widget("napari-mclstexp", "Explore")[1]
    engine, _ = measured_matrix(measured, panel, prediction_meta.normalization(prediction))
    for gene in (panel[0], panel[-1]):
        np.testing.assert_allclose(explore.values(spots, gene), engine[:, panel.index(gene)], rtol=1e-6, atol=1e-6)
