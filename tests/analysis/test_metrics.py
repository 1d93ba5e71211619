"""Metrics on constructed data with known answers."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from napari_mclstexp.analysis.metrics import evaluate, match_spots, summary
from napari_mclstexp.errors import GenePanelError, SpotMatchError


def _adata(X: np.ndarray, names=None, xy=None, genes=None) -> ad.AnnData:
    n, g = X.shape
    names = names if names is not None else [f"s{i}" for i in range(n)]
    genes = genes if genes is not None else [f"G{j}" for j in range(g)]
    a = ad.AnnData(X=X.astype(np.float32), obs=pd.DataFrame(index=names), var=pd.DataFrame(index=genes))
    a.obsm["spatial"] = xy if xy is not None else np.c_[np.arange(n) * 10.0, np.arange(n) * 3.0]
    return a


@pytest.fixture
def truth(rng) -> ad.AnnData:
    # normalised-looking values (non-integer), genes with different means and variances
    X = rng.gamma(2.0, 1.0, size=(300, 80)) * np.linspace(0.2, 3.0, 80)
    return _adata(X)


def test_perfect_prediction_scores_one(truth):
    res = evaluate(truth.copy(), truth)
    assert res["acg"] == pytest.approx(1.0)
    assert res["heg50"] == pytest.approx(1.0)
    assert res["hvg50"] == pytest.approx(1.0)
    assert res["mse"] == pytest.approx(0.0, abs=1e-10)
    assert res["mae"] == pytest.approx(0.0, abs=1e-6)
    assert (res["n_spots"], res["n_genes"], res["n_nan_genes"]) == (300, 80, 0)
    assert res["matched_by"] == "name"
    assert res["normalization"] == "none"


def test_constant_gene_is_counted_not_crashing(truth):
    X = truth.X.copy()
    X[:, 3] = 1.5  # constant measured gene
    t = _adata(X)
    p = _adata(X.copy())
    p.X[:, 7] = 0.0  # constant predicted gene
    res = evaluate(p, t)
    assert res["n_nan_genes"] == 2
    assert np.isnan(res["per_gene"].loc["G3", "r"]) and np.isnan(res["per_gene"].loc["G7", "r"])
    assert res["acg"] == pytest.approx(1.0)  # the 78 defined genes are perfect
    assert summary(res)["n_nan_genes"] == 2


def test_shuffled_spots_score_near_zero(truth, rng):
    pred = truth.copy()
    pred.X = truth.X[rng.permutation(truth.n_obs)]
    res = evaluate(pred, truth)
    assert abs(res["acg"]) < 0.05
    assert abs(res["heg50"]) < 0.08
    assert res["mse"] > 0.1


def test_heg_and_hvg_select_top_genes(rng):
    n = 200
    # first 60 genes: high mean, low variance; last 60: low mean, high variance
    scale = np.r_[np.full(60, 1.0), np.full(60, 3.0)]
    X = rng.normal(size=(n, 120)) * scale + np.r_[np.full(60, 10.0), np.full(60, 5.0)]
    truth = _adata(X)
    P = X.copy()
    P[:, 60:] = -X[:, 60:]  # high-variance genes anti-correlated
    res = evaluate(_adata(P), truth)
    pg = res["per_gene"]
    assert pg["heg"].sum() == 50 and pg.index[pg["heg"]].isin([f"G{j}" for j in range(60)]).all()
    assert pg["hvg"].sum() == 50 and pg.index[pg["hvg"]].isin([f"G{j}" for j in range(60, 120)]).all()
    assert res["heg50"] == pytest.approx(1.0)
    assert res["hvg50"] == pytest.approx(-1.0)
    assert res["acg"] == pytest.approx(0.0, abs=1e-9)


def test_per_gene_matches_scipy(truth, rng):
    pred = truth.copy()
    pred.X = truth.X + rng.normal(0, 2.0, size=truth.shape).astype(np.float32)
    res = evaluate(pred, truth)
    r, p = stats.pearsonr(np.asarray(pred.X[:, 5], float), np.asarray(truth.X[:, 5], float))
    assert res["per_gene"].loc["G5", "r"] == pytest.approx(r, rel=1e-6)
    assert res["per_gene"].loc["G5", "p_value"] == pytest.approx(p, rel=1e-4)
    assert res["per_gene"].loc["G5", "mean"] == pytest.approx(float(np.mean(truth.X[:, 5])), rel=1e-6)
    assert 0 < res["acg"] < 1
    diff = np.asarray(pred.X, float) - np.asarray(truth.X, float)
    assert res["mse"] == pytest.approx(float(np.mean(diff**2)), rel=1e-6)


def test_spots_matched_by_position_and_subset(truth):
    keep = np.arange(0, 300, 2)
    pred = _adata(
        np.asarray(truth.X)[keep][::-1],
        names=[f"p{i}" for i in keep][::-1],
        xy=truth.obsm["spatial"][keep][::-1] + 0.2,  # sub-pixel jitter still matches
    )
    p_idx, t_idx, how = match_spots(pred, truth)
    assert how == "position" and len(p_idx) == 150
    res = evaluate(pred, truth)
    assert res["n_spots"] == 150 and res["acg"] == pytest.approx(1.0)


def test_no_common_spots_is_a_clear_error(truth):
    pred = _adata(np.asarray(truth.X), names=[f"p{i}" for i in range(300)], xy=truth.obsm["spatial"] + 1e4)
    with pytest.raises(SpotMatchError, match="share no spot"):
        evaluate(pred, truth)


def test_no_common_genes_is_a_clear_error(truth):
    pred = _adata(np.asarray(truth.X), genes=[f"X{j}" for j in range(80)])
    with pytest.raises(GenePanelError):
        evaluate(pred, truth)


def test_missing_genes_are_reported(truth):
    pred = _adata(np.c_[np.asarray(truth.X), np.ones((300, 2))], genes=[*truth.var_names, "NEW1", "NEW2"])
    res = evaluate(pred, truth)
    assert res["n_missing_genes"] == 2 and res["n_genes"] == 80


def test_raw_counts_are_normalised_like_the_prediction(rng):
    counts = rng.poisson(5.0, size=(100, 30)).astype(np.float32)
    truth = _adata(counts)
    norm = np.log10(1 + counts / counts.sum(axis=1, keepdims=True) * 1e4)
    pred = _adata(norm)
    pred.uns["mclstexp"] = {"normalization": "log10_1e4"}
    res = evaluate(pred, truth)
    assert res["normalization"] == "log10_1e4"
    assert res["mse"] == pytest.approx(0.0, abs=1e-8) and res["acg"] == pytest.approx(1.0)
