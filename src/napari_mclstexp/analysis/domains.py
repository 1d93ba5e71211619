"""Spatial domains: PCA + k-means on predicted expression or image embeddings, scored by ARI/NMI.

As in the paper: PCA to 9 components, then KMeans (k-means++, fixed seed); agreement with a reference
partition by the adjusted Rand index and normalised mutual information, spots labelled
"undetermined" (or missing) dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import InputError, SampleFormatError

#: Reference labels that mean "no label" (compared case-insensitively, after stripping).
UNDETERMINED = frozenset({"undetermined", "", "nan", "none", "na", "unknown"})
#: ``obs`` column written by :func:`add_domains` for each source.
DOMAIN_KEYS = {"expression": "domain", "embedding": "embedding_cluster"}


def find_domains(X: Any, k: int, *, n_pcs: int = 9, seed: int = 0) -> np.ndarray:
    """Cluster spots into ``k`` domains: PCA (``n_pcs`` components) then k-means++.

    Parameters
    ----------
    X
        (N spots, F features) array or sparse matrix: normalised expression or image embeddings.
    k
        Number of domains (≥ 1, ≤ N).
    n_pcs
        PCA components kept (capped by the data's size); 9 in the paper.
    seed
        Random state of PCA and KMeans.

    Returns
    -------
    np.ndarray
        int64 labels in ``[0, k)``, shape (N,).
    """
    X = np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise InputError(f"cannot cluster an array of shape {X.shape}: need (spots, features)")
    if not np.all(np.isfinite(X)):
        raise InputError("cannot cluster: the matrix contains NaN or infinite values")
    n, f = X.shape
    if not 1 <= k <= n:
        raise InputError(f"k = {k} domains is impossible for {n} spots (need 1 ≤ k ≤ {n})")
    n_comp = min(n_pcs, n, f)
    from sklearn.cluster import KMeans  # here, not with the module: the napari panel imports it at opening
    from sklearn.decomposition import PCA

    Z = PCA(n_components=n_comp, random_state=seed).fit_transform(X) if n_comp < f else X
    km = KMeans(n_clusters=k, init="k-means++", n_init=10, random_state=seed)
    return km.fit_predict(Z).astype(np.int64)


#: Numbers of domains tried when k is chosen automatically (:func:`choose_k`).
AUTO_KS = range(2, 11)
#: Spots the silhouette is computed on (a seeded sample beyond; the score is O(N²)).
SILHOUETTE_SPOTS = 3000
#: Spots (or tiles) k-means is run on to choose k.
CHOOSE_SPOTS = 5000


def choose_k(X: Any, ks=AUTO_KS, *, n_pcs: int = 9, seed: int = 0) -> tuple[int, dict[int, float]]:
    """The number of domains with the best mean silhouette (Rousseeuw 1987) among ``ks``, in the space
    that :func:`find_domains` clusters (the first ``n_pcs`` principal components).

    The silhouette compares each spot's mean distance to its own domain with that to the nearest other
    domain (−1…1); its mean is highest for the partition whose domains are compact and apart.  Ties go to
    the smaller k.

    Returns
    -------
    tuple
        ``(k, {k: mean silhouette})``; ``k`` is the smallest of ``ks`` when every partition is degenerate.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    X = np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float64)
    if X.ndim != 2 or not np.all(np.isfinite(X)):
        raise InputError(f"cannot choose k for an array of shape {X.shape} with NaN or infinite values")
    n, f = X.shape
    ks = [k for k in ks if 2 <= k < n]
    if not ks:
        raise InputError(f"cannot choose a number of domains for {n} spots")
    n_comp = min(n_pcs, n, f)
    Z = PCA(n_components=n_comp, random_state=seed).fit_transform(X) if n_comp < f else X
    if n > CHOOSE_SPOTS:  # a seeded sample: the choice of k, not the labels (find_domains uses every spot)
        Z = Z[np.random.default_rng(seed).choice(n, CHOOSE_SPOTS, replace=False)]
    scores: dict[int, float] = {}
    for k in ks:
        labels = KMeans(n_clusters=k, init="k-means++", n_init=4, random_state=seed).fit_predict(Z)
        if len(np.unique(labels)) < 2:
            continue
        size = min(len(Z), SILHOUETTE_SPOTS)
        scores[k] = float(silhouette_score(Z, labels, sample_size=size, random_state=seed))
    best = max(scores, key=lambda k: (round(scores[k], 6), -k)) if scores else ks[0]
    return int(best), scores


def determined_mask(truth: Any) -> np.ndarray:
    """Boolean mask of spots whose reference label is usable (not NaN/None/"undetermined")."""
    s = pd.Series(np.asarray(truth, dtype=object))
    missing = s.isna().to_numpy()
    text = s.astype(str).str.strip().str.lower()
    return ~missing & ~text.isin(UNDETERMINED).to_numpy()


def score_domains(labels: Any, truth: Any) -> dict[str, float | int]:
    """Agreement of predicted domains with a reference partition.

    Parameters
    ----------
    labels
        Predicted domain per spot (N,).
    truth
        Reference label per spot (N,); NaN/None/"undetermined" spots are dropped.

    Returns
    -------
    dict
        ``ari`` (adjusted Rand index), ``nmi`` (normalised mutual information), ``n_spots``
        (spots scored), ``n_dropped``.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = np.asarray(labels)
    truth = np.asarray(truth, dtype=object)
    if labels.shape != truth.shape:
        raise InputError(f"{labels.shape[0]} domain labels but {truth.shape[0]} reference labels")
    keep = determined_mask(truth)
    if not keep.any():
        raise InputError("every reference label is missing or 'undetermined': nothing to score")
    t = truth[keep].astype(str)
    lab = labels[keep].astype(str)
    return {
        "ari": float(adjusted_rand_score(t, lab)),
        "nmi": float(normalized_mutual_info_score(t, lab)),
        "n_spots": int(keep.sum()),
        "n_dropped": int((~keep).sum()),
    }


def domain_features(adata, source: str = "expression") -> np.ndarray:
    """The matrix clustered for ``source``: ``X`` (``"expression"``) or ``obsm['embedding']``."""
    if source == "expression":
        return np.asarray(adata.X.toarray() if sparse.issparse(adata.X) else adata.X, dtype=np.float64)
    if source == "embedding":
        if "embedding" not in adata.obsm:
            raise SampleFormatError(
                "no image embeddings (obsm['embedding']) in this AnnData: cluster a prediction made "
                "by mclstexp predict, or use --source expression"
            )
        return np.asarray(adata.obsm["embedding"], dtype=np.float64)
    raise InputError(f"unknown source {source!r}: use 'expression' or 'embedding'")


def add_domains(
    adata,
    k: int,
    *,
    source: str = "expression",
    truth: Any = None,
    truth_key: str | None = None,
    n_pcs: int = 9,
    seed: int = 0,
    key_added: str | None = None,
) -> dict[str, Any]:
    """Cluster an AnnData's spots, store the labels in ``obs`` and score them when labels exist.

    Parameters
    ----------
    adata
        Prediction (or sample with normalised expression); modified in place.
    k, n_pcs, seed
        See :func:`find_domains`.
    source
        ``"expression"`` (``X``) or ``"embedding"`` (``obsm['embedding']``, image embeddings).
    truth
        Reference labels (N,) to score against; overrides ``truth_key``.
    truth_key
        ``obs`` column holding the reference labels.
    key_added
        ``obs`` column for the labels (default ``"domain"`` / ``"embedding_cluster"``).

    Returns
    -------
    dict
        ``key``, ``k``, ``source``, ``sizes`` (spots per domain) and, when scored, ``ari``,
        ``nmi``, ``n_spots``, ``n_dropped``.
    """
    if truth is None and truth_key is not None:
        if truth_key not in adata.obs:
            cols = ", ".join(map(str, adata.obs.columns)) or "none"
            raise SampleFormatError(f"no obs column {truth_key!r} (columns: {cols})")
        truth = adata.obs[truth_key].to_numpy()
    labels = find_domains(domain_features(adata, source), k, n_pcs=n_pcs, seed=seed)
    key = key_added or DOMAIN_KEYS[source]
    adata.obs[key] = pd.Categorical([str(v) for v in labels], categories=[str(i) for i in range(k)])
    result: dict[str, Any] = {
        "key": key,
        "k": int(k),
        "source": source,
        "sizes": np.bincount(labels, minlength=k).tolist(),
    }
    if truth is not None:
        result.update(score_domains(labels, truth))
    return result


def reference_labels(pred, truth, key: str) -> np.ndarray:
    """Labels of ``truth.obs[key]`` aligned to ``pred``'s spots (``None`` where unmatched)."""
    from .metrics import match_spots

    if key not in truth.obs:
        cols = ", ".join(map(str, truth.obs.columns)) or "none"
        raise SampleFormatError(f"no obs column {key!r} in the reference sample (columns: {cols})")
    p_idx, t_idx, _ = match_spots(pred, truth)
    labels = np.full(pred.n_obs, None, dtype=object)
    labels[p_idx] = truth.obs[key].astype(object).to_numpy()[t_idx]
    return labels


def domain_scores(pred, truth, key: str, *, seed: int = 0) -> dict[str, float | int]:
    """Domains of the predicted expression, k = number of reference labels, scored against them.

    Returns
    -------
    dict
        ``domain_ari``, ``domain_nmi``, ``domain_k``; empty when fewer than 2 labels exist.
    """
    labels = reference_labels(pred, truth, key)
    k = len(set(labels[determined_mask(labels)]))
    if k < 2:
        return {}
    res = add_domains(pred, k, truth=labels, seed=seed)
    return {"domain_ari": res["ari"], "domain_nmi": res["nmi"], "domain_k": k}
