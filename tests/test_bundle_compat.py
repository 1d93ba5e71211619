"""Bundles written before the paper-protocol fields load and predict exactly as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_mclstexp.analysis.metrics import evaluate
from napari_mclstexp.bundle import load_bundle
from napari_mclstexp.model.presets import as_config
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.predict.spots import predict_at_spots
from napari_mclstexp.progress import run
from napari_mclstexp.workflows.demo import load_demo_sample, sample_data_dir, split_demo_sample

#: Produced by the code before these fields existed (commit be2ef88) on the shipped demo bundle, CPU.
BEFORE = {"x_sum": 26167.24175798893, "acg": 0.4629172334818337, "mse": 0.15204910069983948}


@pytest.mark.slow
def test_shipped_bundle_predicts_as_before():
    folder = sample_data_dir()
    bundle = load_bundle(Path(__file__).parent / "fixtures" / "demo_quick_format1.mclst")  # the format-1 model
    new_keys = {"final_relu", "drop_last", "rotate_mode", "jitter_order", "test_augment", "value_normalization"}
    assert not new_keys & set(bundle.config)  # written before them: the defaults must mean "as before"
    cfg = as_config(bundle.config)
    assert cfg.final_relu and cfg.value_normalization is None
    _, test = split_demo_sample(load_demo_sample(folder))
    pred = run(predict_at_spots(bundle, test, PredictOptions(device="cpu")))
    scores = evaluate(pred, test)
    assert pred.uns["mclstexp"]["normalization"] == scores["normalization"] == "log10_1e4"
    assert float(np.asarray(pred.X, np.float64).sum()) == pytest.approx(BEFORE["x_sum"], rel=1e-6)
    assert scores["acg"] == pytest.approx(BEFORE["acg"], abs=1e-6)
    assert scores["mse"] == pytest.approx(BEFORE["mse"], rel=1e-6)
