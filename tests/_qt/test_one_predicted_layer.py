"""One builder of predicted-spots layers: the Predict widget, the demo's viewer and napari's reader draw
the same prediction in the same colours (``layer_data.predicted_spots_layer``)."""

from __future__ import annotations

import numpy as np

from napari_mclstexp.layer_data import KEY, predicted_spots_layer
from napari_mclstexp.predict.options import PredictOptions

from .test_launch import _fake_result
from .test_trust import _predict_spots


def test_predict_widget_draws_what_the_builder_builds(make_napari_viewer, qtbot, synthetic_samples, tiny_bundle):
    viewer = make_napari_viewer()
    predict, pred = _predict_spots(viewer, qtbot, synthetic_samples[2], tiny_bundle)
    layer = viewer.layers["SYN3 spots predicted"]
    gene = layer.metadata[KEY]["gene"]
    data, kwargs, _ = predicted_spots_layer(pred, layer.metadata[KEY]["mpp"], gene=gene)
    np.testing.assert_array_equal(layer.data, data)
    np.testing.assert_allclose(layer.face_color, kwargs["face_color"])
    np.testing.assert_allclose(layer.features["value"], kwargs["features"]["value"])


def test_demo_viewer_draws_what_the_builder_builds(make_napari_viewer, tmp_path):
    from napari_mclstexp._qt.launch import populate_viewer

    viewer = make_napari_viewer()
    result = _fake_result(tmp_path)
    info = populate_viewer(viewer, result, dock_widgets=False)
    predicted = viewer.layers[info["layers"][-1]]
    _, kwargs, _ = predicted_spots_layer(result.prediction, gene=info["gene"])
    np.testing.assert_allclose(predicted.face_color, kwargs["face_color"])
    assert predicted.metadata[KEY]["gene"] == info["gene"] == "TUMOUR_M1"


def test_reader_draws_what_the_builder_builds(synthetic_samples, tiny_bundle, tmp_path):
    from napari_mclstexp._reader import read_h5ad_layers
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.predict.spots import predict_at_spots
    from napari_mclstexp.progress import run

    pred = run(predict_at_spots(load_bundle(tiny_bundle), synthetic_samples[2], PredictOptions(device="cpu")))
    pred.write_h5ad(tmp_path / "p.h5ad")
    _, kwargs, layer_type = read_h5ad_layers(str(tmp_path / "p.h5ad"))[-1]
    _, built, _ = predicted_spots_layer(pred, gene=str(pred.var_names[0]))
    assert layer_type == "points"
    np.testing.assert_allclose(kwargs["face_color"], built["face_color"])
    # colours go from the gene's 1st to 99th percentile through viridis: the lowest spot is dark
    values = built["features"]["value"]
    assert built["face_color"][np.argmin(values)][:3].sum() < built["face_color"][np.argmax(values)][:3].sum()
