"""Spatial domains of a prediction (k-means on predicted expression or image embeddings), scored against
reference labels when given."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis.domains import domain_features, find_domains, score_domains
from ..progress import CancelToken, Progress, ProgressGen

if TYPE_CHECKING:
    from anndata import AnnData


def domains_task(
    adata: AnnData, k: int, source: str, truth: Any = None, cancel: CancelToken | None = None
) -> ProgressGen[tuple[np.ndarray, dict]]:
    """Generator: domain labels (int, 0..k-1) per spot or tile and their scores against ``truth``
    (ARI/NMI; ``{}`` without it)."""
    yield Progress("domains", 0, 2, message="clustering")
    labels = find_domains(domain_features(adata, source), int(k))
    if cancel is not None:
        cancel.raise_if_cancelled()
    yield Progress("domains", 1, 2, message="scoring")
    scores = score_domains(labels, truth) if truth is not None else {}
    yield Progress("domains", 2, 2)
    return labels, scores
