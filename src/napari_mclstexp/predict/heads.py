"""Predictions from image embeddings, by the bundle's head: retrieval (contrastive) or direct (ridge)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .retrieval import Retrieval, retrieve

if TYPE_CHECKING:
    from ..bundle import Bundle


def is_direct(bundle: Bundle) -> bool:
    """Whether the bundle's model outputs predictions itself (``head="ridge"``) instead of embeddings."""
    return str(bundle.config.get("head", "contrastive")) == "ridge"


def predict_from_embeddings(emb: Any, bundle: Bundle, k: int, distance: str) -> Retrieval:
    """Retrieval from the bundle's bank, or (ridge) the model's outputs as predictions.

    A direct head has no neighbours: ``indices``/``weights`` are (N, 0) and ``uncertainty`` is NaN
    (no spread of neighbours to report).
    """
    if not is_direct(bundle):
        return retrieve(emb, bundle.bank, k, distance)
    n = emb.shape[0]
    if torch.is_tensor(emb):
        pred = emb.float()
        return Retrieval(
            pred,
            torch.full((n,), float("nan"), device=pred.device),
            torch.zeros((n, 0), dtype=torch.long, device=pred.device),
            torch.zeros((n, 0), device=pred.device),
        )
    pred = np.asarray(emb, dtype=np.float32)
    return Retrieval(pred, np.full(n, np.nan, np.float32), np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32))
