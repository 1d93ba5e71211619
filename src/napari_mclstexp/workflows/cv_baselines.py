"""What a CV fold's model is compared with, and the patient-level truth of each fold.

Per fold, besides the model: ``ridge`` (the HEST recipe, PCA 256 + ridge, on the features of the
fold's own image encoder: frozen features come from the cache), ``histogram`` (colour-histogram kNN,
:mod:`~napari_mclstexp.predict.baseline`) and ``mean`` (the training spots' mean expression at every
spot: its Pearson correlations are undefined, its MSE is the floor any model must beat).  Each gets
the model's metrics plus ``hest_pcc``: Pearson averaged over the 50 most variable genes of the
**training** sections (HEST-Benchmark's metric, chosen without looking at the test section).

A slide-scheme fold whose test patient also has sections in training is ``within_patient``: serial
sections of one tumour share tissue, so its numbers are optimistic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data.scales import value_normalization
from ..progress import CancelToken, ProgressGen

#: Baselines scored per fold, in table order.
BASELINES = ("ridge", "histogram", "mean")
#: Genes of the HEST metric.
HEST_GENES = 50
#: Keys of a fold's metrics that the table and the means use.
TABLE_KEYS = ("acg", "hest_pcc", "heg50", "hvg50", "mse")


def default_scheme(samples: Sequence[Any]) -> str:
    """``"patient"`` when ``obs['patient']`` spans ≥ 2 patients over the samples, else ``"slide"``."""
    patients = set()
    for a in samples:
        if "patient" not in a.obs or not a.n_obs:
            return "slide"
        patients.update(a.obs["patient"].astype(str).unique().tolist())
    return "patient" if len(patients) >= 2 else "slide"


def within_patient(fold: Any, patients: Mapping[str, str]) -> bool:
    """Whether a section of the test patient is among the fold's training sections."""
    return any(patients.get(s) == patients.get(fold.test) for s in fold.train)


def training_hvgs(train_expr: np.ndarray, genes: Sequence[str], n: int = HEST_GENES) -> list[str]:
    """The ``n`` genes of highest variance over the training spots' normalised expression."""
    var = np.asarray(train_expr, dtype=np.float64).var(axis=0)
    order = np.argsort(-var, kind="stable")[: min(n, len(genes))]
    return [str(genes[i]) for i in order]


def hest_pcc(per_gene_r: Mapping[str, float], hvgs: Sequence[str]) -> float | None:
    """Mean Pearson r over ``hvgs`` (NaN genes skipped; None when none is finite)."""
    values = np.array([per_gene_r.get(g, np.nan) for g in hvgs], dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def _score(pred: Any, values: np.ndarray, test: Any, normalization: str, hvgs: list[str]) -> dict[str, Any]:
    from ..analysis.metrics import evaluate, summary

    base = pred.copy()
    base.X = np.asarray(values, dtype=np.float32)
    scores = evaluate(base, test, normalization=normalization)
    out = summary(scores)
    out["hest_pcc"] = hest_pcc({str(g): float(r) for g, r in scores["per_gene"]["r"].items()}, hvgs)
    return out


def fold_baselines(
    bundle: Any,
    model: Any,
    train_samples: Sequence[Any],
    test: Any,
    pred: Any,
    *,
    device: Any,
    patch_cache: Any = None,
    feature_cache: Any = None,
    cancel: CancelToken | None = None,
) -> ProgressGen[dict[str, Any]]:
    """Score every baseline of :data:`BASELINES` on the fold's test section (generator).

    Parameters
    ----------
    bundle
        The fold's bundle (genes, config).
    model
        The fold's trained model (its image encoder gives the ridge features).
    train_samples, test
        The fold's training sections and test section.
    pred
        The model's prediction on ``test`` (an AnnData to copy the spot layout from).
    device
        Where the encoder runs.
    patch_cache, feature_cache
        Caches; features are cached only when the encoder was frozen (its weights are the file's).

    Returns
    -------
    dict
        ``{"hvgs": [...], "ridge": metrics, "histogram": metrics, "mean": metrics}``.
    """
    import torch

    from ..data.genes import expression_matrix
    from ..data.patches import sample_patches
    from ..model.ridge import fit_ridge
    from ..predict.baseline import histogram_knn_predict
    from ..predict.spots import patch_px_for
    from ..sample import microns_per_pixel
    from ..train.features import sample_patch_px
    from ..train.frozen import iter_features_of

    cfg = model.config
    genes, norm = list(bundle.genes), value_normalization(bundle.config)
    tr_x = np.concatenate([expression_matrix(a, genes, norm) for a in train_samples]).astype(np.float32)
    hvgs = training_hvgs(tr_x, genes)
    out: dict[str, Any] = {"hvgs": hvgs}
    frozen = cfg.freeze and cfg.unfreeze_last == 0
    if frozen and feature_cache is None:
        from ..data.features import FeatureCache

        feature_cache = FeatureCache()
    cache = feature_cache if frozen else None
    dev = torch.device(device)
    test_px = patch_px_for(bundle, microns_per_pixel(test))  # the test section's crops, as the model's
    feats = yield from iter_features_of(
        model,
        [*train_samples, test],
        dev,
        cache=cache,
        patch_cache=patch_cache,
        sizes=[None] * len(train_samples) + [test_px],
        cancel=cancel,
    )
    w, b = fit_ridge(np.concatenate(feats[:-1]), tr_x, seed=int(cfg.seed))
    out["ridge"] = _score(pred, feats[-1] @ w.T + b, test, norm, hvgs)
    out_px = int(cfg.input_px)
    tr_p = np.concatenate(
        [sample_patches(a, sample_patch_px(a, cfg), out_px, patch_cache, cancel) for a in train_samples]
    )
    te_p = sample_patches(test, test_px, out_px, patch_cache, cancel)
    k = int(bundle.config.get("k", 50))
    out["histogram"] = _score(pred, histogram_knn_predict(tr_p, tr_x, te_p, k), test, norm, hvgs)
    out["mean"] = _score(pred, np.broadcast_to(tr_x.mean(0), (test.n_obs, len(genes))), test, norm, hvgs)
    return out


def summarize(folds: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Means over folds for the model and every baseline, and the model's ratio to each (ACG, HEST PCC, MSE).

    ``ratios[name]["acg"]`` = model mean ACG / baseline mean ACG (> 1: the model correlates better);
    for ``mse`` it is baseline / model (> 1: the model errs less).
    """

    def mean_of(records: list[dict[str, Any]]) -> dict[str, float]:
        res = {}
        for key in TABLE_KEYS:
            vals = np.array([r.get(key) for r in records if r.get(key) is not None], dtype=float)
            vals = vals[np.isfinite(vals)]
            if vals.size:
                res[key], res[key + "_std"] = float(vals.mean()), float(vals.std())
        return res

    recs = list(folds.values())
    means = {"model": mean_of([r.get("metrics", {}) for r in recs])}
    for name in BASELINES:
        rows = [r["baselines"][name] for r in recs if name in r.get("baselines", {})]
        if rows:
            means[name] = mean_of(rows)
    ratios: dict[str, dict[str, float | None]] = {}
    model = means["model"]
    for name in BASELINES:
        if name not in means:
            continue
        base, ratio = means[name], {}
        for key in ("acg", "hest_pcc"):
            ratio[key] = model[key] / base[key] if base.get(key) and model.get(key) is not None else None
        ratio["mse"] = base["mse"] / model["mse"] if model.get("mse") and base.get("mse") is not None else None
        ratios[name] = ratio
    return {
        "means": means,
        "ratios": ratios,
        "within_patient_folds": sorted(t for t, r in folds.items() if r.get("within_patient")),
    }


def format_table(results: Mapping[str, Any], metric: str = "acg") -> str:
    """One table: per fold the model and each baseline on ``metric``, then the means and the model's ratios."""
    folds = results.get("folds", {})
    names = ["model", *[b for b in BASELINES if any(b in f.get("baselines", {}) for f in folds.values())]]

    def fmt(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, int | float) and np.isfinite(v) else "-"

    lines = [
        f"{metric.upper()} per fold ({results.get('scheme', '?')} scheme)",
        f"{'fold':<12}" + "".join(f"{n:>11}" for n in names),
    ]
    for test, rec in folds.items():
        vals = [rec.get("metrics", {}).get(metric)] + [
            rec.get("baselines", {}).get(n, {}).get(metric) for n in names[1:]
        ]
        tag = "  within-patient (optimistic)" if rec.get("within_patient") else ""
        lines.append(f"{test:<12}" + "".join(f"{fmt(v):>11}" for v in vals) + tag)
    summ = summarize(folds)
    lines.append(f"{'mean':<12}" + "".join(f"{fmt(summ['means'].get(n, {}).get(metric)):>11}" for n in names))
    ratio_key = metric if metric in ("acg", "hest_pcc", "mse") else "acg"
    lines.append(
        f"{'model ratio':<12}"
        + f"{'':>11}"
        + "".join(f"{fmt(summ['ratios'].get(n, {}).get(ratio_key)):>11}" for n in names[1:])
    )
    if summ["within_patient_folds"]:
        lines.append(
            "within-patient (optimistic): "
            + ", ".join(summ["within_patient_folds"])
            + " — the test patient has other sections in training"
        )
    return "\n".join(lines)


def model_hest_pcc(bundle: Any, train_samples: Sequence[Any], scores: Mapping[str, Any]) -> float | None:
    """The model's HEST metric on a fold: Pearson over the training sections' 50 most variable genes."""
    from ..data.genes import expression_matrix

    genes, norm = list(bundle.genes), value_normalization(bundle.config)
    tr_x = np.concatenate([expression_matrix(a, genes, norm) for a in train_samples])
    per_gene = {str(g): float(r) for g, r in scores["per_gene"]["r"].items()}
    return hest_pcc(per_gene, training_hvgs(tr_x, genes))
