"""Spatial domains of a prediction (k-means on predicted expression or image embeddings), scored against
reference labels when given."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis.domains import choose_k, domain_features, find_domains, score_domains
from ..progress import CancelToken, Progress, ProgressGen

if TYPE_CHECKING:
    from anndata import AnnData


def domains_task(
    adata: AnnData, k: int | None, source: str, truth: Any = None, cancel: CancelToken | None = None
) -> ProgressGen[tuple[np.ndarray, dict]]:
    """Generator: domain labels (int, 0..k-1) per spot or tile and their scores against ``truth``
    (ARI/NMI; ``{}`` without it).  ``k`` ``None`` (or below 2): chosen by the best mean silhouette over
    k = 2…10 (:func:`~napari_mclstexp.analysis.domains.choose_k`), written to the scores as ``k`` with each
    k's silhouette as ``silhouettes``."""
    features = domain_features(adata, source)
    scores: dict = {}
    if k is None or int(k) < 2:
        yield Progress("domains", 0, 3, message="choosing k (silhouette, k = 2…10)")
        k, silhouettes = choose_k(features)
        scores = {"k": int(k), "silhouettes": silhouettes}
        if cancel is not None:
            cancel.raise_if_cancelled()
    yield Progress("domains", 1, 3, message=f"clustering into {int(k)}")
    labels = find_domains(features, int(k))
    if cancel is not None:
        cancel.raise_if_cancelled()
    yield Progress("domains", 2, 3, message="scoring")
    if truth is not None:
        scores.update(score_domains(labels, truth))
    yield Progress("domains", 3, 3)
    return labels, scores
