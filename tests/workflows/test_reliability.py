"""Per-gene held-out reliability: Pearson per gene, leave-one-section-out retrieval, stored and copied."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.analysis.metrics import pearson_per_gene
from napari_mclstexp.analysis.reliability import RELIABLE_R, best_gene, reliability_map
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.progress import run
from napari_mclstexp.workflows.reliability import iter_gene_reliability, within_section_r


def test_pearson_per_gene_matches_numpy(rng):
    truth = rng.normal(size=(50, 3))
    pred = np.stack([truth[:, 0] * 2 + 1, -truth[:, 1], np.full(50, 3.0)], axis=1)
    r = pearson_per_gene(pred, truth)[0]
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(-1.0) and np.isnan(r[2])


def test_best_gene_prefers_reliable_then_variable():
    assert best_gene(["A", "B", "C"], {"A": 0.1, "B": 0.7, "C": float("nan")}) == "B"
    values = np.array([[0, 1, 0], [0, 5, 1]], float)
    assert best_gene(["A", "B", "C"], {}, values) == "B"
    assert best_gene([], {}) is None


def test_reliability_is_measured_within_sections(rng):
    """Leave-one-section-out retrieval predicts each section at the *other* section's gene levels: pooled over
    sections those swapped levels gave every gene a negative r (an untrained model scored like a trained one,
    −0.25 vs −0.36 on the synthetic sections); within each section the image signal is what counts."""
    signal = rng.normal(size=(120, 3))
    sections = np.repeat(["A", "B"], 60)
    offset = np.where(sections[:, None] == "A", 0.0, 5.0) * np.array([1.0, 1.0, 0.0])
    truth = signal + offset
    pred = signal + offset[::-1]  # each section predicted at the other one's level, its pattern right
    assert np.all(pearson_per_gene(pred, truth)[0][:2] < 0)  # pooled: the level swap dominates
    np.testing.assert_allclose(within_section_r(pred, truth, sections), 1.0)
    noise = rng.normal(size=(120, 3)) + offset[::-1]
    assert np.all(np.abs(within_section_r(noise, truth, sections)) < 0.3)
    one = np.full(120, "A")  # one section (its halves held out in turn): the plain Pearson r
    np.testing.assert_allclose(within_section_r(noise, truth, one), pearson_per_gene(noise, truth)[0])


@pytest.fixture(scope="module")
def tiny_trained_bundle(tiny_trained, synthetic_samples):
    """The session's one-epoch tiny model (``tiny_trained``, shared with the widget tests) as a bundle."""
    from napari_mclstexp.bundle import make_bundle

    return make_bundle(tiny_trained, synthetic_samples[:2], device="cpu")


def test_reliability_is_stored_and_copied_into_predictions(tiny_trained_bundle, synthetic_samples, tmp_path):
    from napari_mclstexp.bundle import load_bundle, save_bundle
    from napari_mclstexp.predict.spots import predict_at_spots

    bundle = tiny_trained_bundle
    info = run(iter_gene_reliability(bundle, synthetic_samples[:2], device="cpu"))
    assert info["genes"] == list(bundle.genes) and len(info["r"]) == len(bundle.genes)
    assert info["threshold"] == RELIABLE_R and info["n_spots"] == len(bundle.bank)
    r = np.array([np.nan if v is None else v for v in info["r"]])
    assert np.isfinite(r).sum() > len(r) // 2 and np.nanmax(np.abs(r)) <= 1.0
    # that marker genes come out more reliable than noise genes once trained, and not untrained, is tested
    # on a model trained long enough to say so: tests/workflows/test_learning.py
    bundle.metadata["reliability"] = info
    save_bundle(bundle, tmp_path / "m.mclst")
    loaded = load_bundle(tmp_path / "m.mclst")
    assert reliability_map(loaded.metadata["reliability"]).keys() == set(bundle.genes)
    pred = run(predict_at_spots(loaded, synthetic_samples[2], PredictOptions(device="cpu")))
    np.testing.assert_allclose(pred.uns["mclstexp"]["reliability"]["r"], r, rtol=1e-6)  # NaN kept in place
    pred.write_h5ad(tmp_path / "p.h5ad")  # lists survive .h5ad
