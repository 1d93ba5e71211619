"""Per-gene held-out reliability: Pearson per gene, leave-one-section-out retrieval, stored and copied."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mclstexp.analysis.metrics import pearson_per_gene
from napari_mclstexp.analysis.reliability import RELIABLE_R, best_gene, reliability_map
from napari_mclstexp.predict.options import PredictOptions
from napari_mclstexp.progress import run
from napari_mclstexp.workflows.reliability import iter_gene_reliability

TINY = {"patch_px": 32, "input_px": 16, "batch_size": 64, "embed_dim": 16, "k": 10, "epochs": 1}


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


@pytest.fixture(scope="module")
def tiny_trained(synthetic_samples):
    from napari_mclstexp.bundle import make_bundle
    from napari_mclstexp.model.presets import get_preset
    from napari_mclstexp.train.trainer import train

    result = run(train(synthetic_samples[:2], get_preset("quick").replace(**TINY), device="cpu"))
    return make_bundle(result, synthetic_samples[:2], device="cpu")


def test_reliability_is_stored_and_copied_into_predictions(tiny_trained, synthetic_samples, tmp_path):
    from napari_mclstexp.bundle import load_bundle, save_bundle
    from napari_mclstexp.predict.spots import predict_at_spots

    bundle = tiny_trained
    info = run(iter_gene_reliability(bundle, synthetic_samples[:2], device="cpu"))
    assert info["genes"] == list(bundle.genes) and len(info["r"]) == len(bundle.genes)
    assert info["threshold"] == RELIABLE_R and info["n_spots"] == len(bundle.bank)
    r = np.array([np.nan if v is None else v for v in info["r"]])
    assert np.isfinite(r).sum() > len(r) // 2 and np.nanmax(np.abs(r)) <= 1.0
    # region markers vary across the section and images show the regions: better than noise genes
    marks = [v for g, v in zip(info["genes"], r, strict=True) if g.startswith("MARK") and np.isfinite(v)]
    noise = [v for g, v in zip(info["genes"], r, strict=True) if g.startswith("NOISE") and np.isfinite(v)]
    assert np.mean(marks) > np.mean(noise)
    bundle.metadata["reliability"] = info
    save_bundle(bundle, tmp_path / "m.mclst")
    loaded = load_bundle(tmp_path / "m.mclst")
    assert reliability_map(loaded.metadata["reliability"]).keys() == set(bundle.genes)
    pred = run(predict_at_spots(loaded, synthetic_samples[2], PredictOptions(device="cpu")))
    np.testing.assert_allclose(pred.uns["mclstexp"]["reliability"]["r"], r, rtol=1e-6)  # NaN kept in place
    pred.write_h5ad(tmp_path / "p.h5ad")  # lists survive .h5ad
