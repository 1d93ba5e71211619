"""predict_and_score: predictions at spots plus the paper's metrics when the sample was measured."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.analysis.metrics import evaluate
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.predict.spots import predict_at_spots
from napari_mclstexp.progress import run
from napari_mclstexp.workflows.predict import predict_and_score


def test_scores_match_evaluate_on_a_measured_section(tiny_bundle, synthetic_samples):
    held_out = synthetic_samples[2]
    pred = run(predict_and_score(tiny_bundle, held_out, PredictOptions(device="cpu")))
    scores = pred.uns["mclstexp"]["vs_measured"]
    plain = run(predict_at_spots(tiny_bundle, held_out, PredictOptions(device="cpu")))
    np.testing.assert_array_equal(pred.X, plain.X)  # scoring does not change the predictions
    expected = evaluate(plain, held_out)
    assert "per_gene" not in scores
    assert scores["acg"] == pytest.approx(expected["acg"]) and scores["heg50"] == pytest.approx(expected["heg50"])


def test_no_scores_without_measured_genes(tiny_bundle, synthetic_samples):
    spots_only = synthetic_samples[2][:, []].copy()  # positions and image, no counts
    pred = run(predict_and_score(tiny_bundle, spots_only, PredictOptions(device="cpu")))
    assert "vs_measured" not in pred.uns.get("mclstexp", {})
    assert pred.n_obs == spots_only.n_obs


def test_binned_sample_is_predicted_bin_by_bin_in_blocks(tiny_bundle, tmp_path):
    from napari_mclstexp.io.visium_hd import read_visium_hd
    from napari_mclstexp.synthetic.visium_hd import HDGeometry, write_visium_hd

    write_visium_hd(
        tmp_path / "HDP",
        n_rows=12,
        n_cols=12,
        bins=(8,),
        geometry=HDGeometry(1.0, (80.0, 80.0)),
        image=True,
        image_margin_px=80,
        seed=2,
    )
    hd = read_visium_hd(tmp_path / "HDP", 8)
    pred = run(predict_and_score(tiny_bundle, hd, PredictOptions(device="cpu")))
    assert pred.uns["mclstexp"]["mode"] == "bins" and "bin_grid" in pred.uns
    assert list(pred.obs_names) == list(hd.obs_names) and np.isfinite(pred.X).all()
