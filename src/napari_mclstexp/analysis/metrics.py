"""Accuracy of predicted expression against measured expression (the paper's metrics).

ACG is the mean over genes of the Pearson correlation across spots; HEG@50 the same over the 50 genes
with the highest mean measured expression, HVG@50 over the 50 most variable measured genes; MSE and
MAE are taken over the whole (spots × genes) matrix of normalised expression.  Genes whose correlation
is undefined (constant in the prediction or the measurement) are dropped from the means and counted.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats

from .. import prediction_meta
from ..errors import GenePanelError, SpotMatchError

#: Number of genes in the HEG and HVG subsets (the paper's "@50").
TOP_N = 50
#: Spot centres are matched by position after rounding to this many full-resolution pixels.
POSITION_DECIMALS = 0


def _dense(X: Any) -> np.ndarray:
    return np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float64)


def match_spots(pred, truth) -> tuple[np.ndarray, np.ndarray, str]:
    """Pair the spots of a prediction and a measured sample.

    Spots are matched by ``obs_names`` when the two share any; otherwise by ``obsm['spatial']``
    rounded to whole full-resolution pixels.

    Parameters
    ----------
    pred, truth
        AnnData objects.

    Returns
    -------
    pred_idx, truth_idx
        Integer index arrays of equal length (matched pairs, in the prediction's order).
    how
        ``"name"`` or ``"position"``.

    Raises
    ------
    SpotMatchError
        When no spot is common to both.
    """
    truth_pos = pd.Index(truth.obs_names)
    if truth_pos.is_unique:
        idx = truth_pos.get_indexer(pd.Index(pred.obs_names))
        keep = np.flatnonzero(idx >= 0)
        if keep.size:
            return keep, idx[keep], "name"
    if "spatial" in pred.obsm and "spatial" in truth.obsm:

        def keys(a) -> pd.Index:
            xy = np.round(np.asarray(a.obsm["spatial"], dtype=float)[:, :2], POSITION_DECIMALS)
            return pd.Index([f"{x:.0f}_{y:.0f}" for x, y in xy])

        tk = keys(truth)
        # first occurrence wins when two measured spots round to the same pixel
        first = ~tk.duplicated()
        tk_unique = tk[first]
        t_rows = np.flatnonzero(first)
        idx = tk_unique.get_indexer(keys(pred))
        keep = np.flatnonzero(idx >= 0)
        if keep.size:
            return keep, t_rows[idx[keep]], "position"
    raise SpotMatchError(
        "the prediction and the measured sample share no spot (neither by spot name nor by "
        "position in full-resolution pixels); was the prediction made on this sample?"
    )


def _looks_normalised(X: np.ndarray) -> bool:
    """Raw counts are non-negative integers; anything else is taken as already normalised."""
    return X.size > 0 and (bool(np.any(X < 0)) or not np.allclose(X, np.round(X)))


def measured_matrix(truth, genes: list[str], normalization: str | None) -> tuple[np.ndarray, str]:
    """Measured expression of ``genes`` (panel order) on the prediction's scale.

    Parameters
    ----------
    truth
        AnnData with raw counts (or already normalised values) in ``X``.
    genes
        The prediction's gene panel; normalisation divides by the sum over this panel.
    normalization
        ``"log10_1e4"``, ``"ln_cpm"``, ``"none"`` (use ``X`` as is) or ``None`` (same as ``"none"``).

    Returns
    -------
    matrix
        float64 (N, G).
    used
        The normalisation actually applied (``"none"`` when ``X`` was already normalised).
    """
    present = [g for g in genes if g in truth.var_names]
    raw = _dense(truth[:, present].X) if present else np.zeros((truth.n_obs, 0))
    if normalization is None and raw.size and not _looks_normalised(raw):
        warnings.warn(
            "the prediction records no normalisation and the measurement holds raw counts: "
            "comparing them as they are (pass normalization=...)",
            UserWarning,
            stacklevel=3,
        )
    if normalization in (None, "none") or _looks_normalised(raw):
        out = np.zeros((truth.n_obs, len(genes)))
        pos = pd.Index(genes).get_indexer(present)
        out[:, pos] = raw
        return out, "none"
    from ..data.genes import expression_matrix

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # absent genes are reported by evaluate
        return np.asarray(expression_matrix(truth, genes, normalization), dtype=np.float64), normalization


def pearson_per_gene(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r and two-sided p-value per column (NaN where either column is constant).

    Parameters
    ----------
    pred, truth
        Arrays (N spots, G genes).

    Returns
    -------
    r, p
        float64 arrays of length G.
    """
    n, g = truth.shape
    if n < 2:
        return np.full(g, np.nan), np.full(g, np.nan)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")  # ConstantInputWarning, NearConstantInputWarning
        res = stats.pearsonr(pred, truth, axis=0)
    r = np.atleast_1d(np.asarray(res.statistic, dtype=np.float64))
    p = np.atleast_1d(np.asarray(res.pvalue, dtype=np.float64))
    constant = (np.ptp(pred, axis=0) == 0) | (np.ptp(truth, axis=0) == 0)
    r[constant] = np.nan
    p[constant] = np.nan
    return r, p


def _nanmean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def evaluate(pred, truth, *, normalization: str | None = None, top_n: int = TOP_N) -> dict[str, Any]:
    """Compare a prediction with the measured expression of the same spots.

    Parameters
    ----------
    pred
        Prediction AnnData (``X`` = predicted normalised expression, genes = bundle genes).
    truth
        Measured sample (``X`` raw counts, or already normalised values).
    normalization
        How to normalise the measured counts. ``None`` reads it from ``pred.uns['mclstexp']``;
        ``"none"`` uses ``truth.X`` as is.  Values that are not integer counts are never
        re-normalised.
    top_n
        Size of the HEG / HVG gene subsets (50 in the paper).

    Returns
    -------
    dict
        ``acg``, ``heg50``, ``hvg50`` (mean Pearson r, NaN genes dropped), ``mse``, ``mae``
        (squared / absolute error in normalised units), ``n_spots``, ``n_genes``,
        ``n_nan_genes``, ``n_missing_genes`` (prediction genes absent from the measurement),
        ``matched_by``, ``normalization`` and ``per_gene`` (DataFrame indexed by gene with
        ``r``, ``p_value``, ``mean``, ``variance``, ``heg``, ``hvg``).

    Raises
    ------
    SpotMatchError
        No common spots.
    GenePanelError
        No gene of the prediction is measured.
    """
    p_idx, t_idx, how = match_spots(pred, truth)
    genes = [str(g) for g in pred.var_names]
    measured = [g for g in genes if g in truth.var_names]
    if not measured:
        raise GenePanelError("none of the predicted genes is measured in the truth sample")
    if normalization is None:
        normalization = prediction_meta.normalization(pred)
    truth_all, used = measured_matrix(truth, genes, normalization)
    cols = pd.Index(genes).get_indexer(measured)
    y = truth_all[t_idx][:, cols]
    yhat = _dense(pred.X)[p_idx][:, cols]

    r, pval = pearson_per_gene(yhat, y)
    mean, var = y.mean(axis=0), y.var(axis=0)
    k = min(top_n, len(measured))
    # stable sorts so ties are broken by panel order, deterministically
    heg = np.zeros(len(measured), dtype=bool)
    heg[np.argsort(-mean, kind="stable")[:k]] = True
    hvg = np.zeros(len(measured), dtype=bool)
    hvg[np.argsort(-var, kind="stable")[:k]] = True
    per_gene = pd.DataFrame(
        {"r": r, "p_value": pval, "mean": mean, "variance": var, "heg": heg, "hvg": hvg},
        index=pd.Index(measured, name="gene"),
    )
    diff = yhat - y
    return {
        "acg": _nanmean(r),
        "heg50": _nanmean(r[heg]),
        "hvg50": _nanmean(r[hvg]),
        "mse": float(np.mean(diff**2)),
        "mae": float(np.mean(np.abs(diff))),
        "n_spots": int(len(p_idx)),
        "n_genes": int(len(measured)),
        "n_nan_genes": int(np.count_nonzero(~np.isfinite(r))),
        "n_missing_genes": int(len(genes) - len(measured)),
        "matched_by": how,
        "normalization": used,
        "per_gene": per_gene,
    }


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe part of :func:`evaluate`'s result (everything but ``per_gene``; NaN → None)."""
    out: dict[str, Any] = {}
    for key, value in result.items():
        if key == "per_gene":
            continue
        if isinstance(value, float) and not np.isfinite(value):
            value = None
        out[key] = value
    return out
