"""predict_and_score: predictions at spots plus the paper's metrics when the sample was measured."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.analysis.metrics import evaluate
from napari_mclstexp.predict.spots import predict_at_spots
from napari_mclstexp.progress import run
from napari_mclstexp.workflows.predict import predict_and_score


def test_scores_match_evaluate_on_a_measured_section(tiny_bundle, synthetic_samples):
    held_out = synthetic_samples[2]
    pred = run(predict_and_score(tiny_bundle, held_out, device="cpu"))
    scores = pred.uns["mclstexp"]["vs_measured"]
    plain = run(predict_at_spots(tiny_bundle, held_out, device="cpu"))
    np.testing.assert_array_equal(pred.X, plain.X)  # scoring does not change the predictions
    expected = evaluate(plain, held_out)
    assert "per_gene" not in scores
    assert scores["acg"] == pytest.approx(expected["acg"]) and scores["heg50"] == pytest.approx(expected["heg50"])


def test_no_scores_without_measured_genes(tiny_bundle, synthetic_samples):
    spots_only = synthetic_samples[2][:, []].copy()  # positions and image, no counts
    pred = run(predict_and_score(tiny_bundle, spots_only, device="cpu"))
    assert "vs_measured" not in pred.uns.get("mclstexp", {})
    assert pred.n_obs == spots_only.n_obs
