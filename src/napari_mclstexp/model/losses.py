"""Contrastive losses aligning image and spot embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def clip_loss(
    img_emb: torch.Tensor,
    spot_emb: torch.Tensor,
    temperature: float | torch.Tensor = 1.0,
    targets: str = "hard",
) -> torch.Tensor:
    """Symmetric CLIP loss between matched rows of ``img_emb`` and ``spot_emb``.

    ``logits = spot_emb @ img_emb.T / temperature``; with ``targets="hard"`` (mclSTExp) the targets are
    the identity, ``loss = ½ [CE(logits, I) + CE(logitsᵀ, I)]``; with ``targets="soft"`` (BLEEP) they
    are ``softmax((img·imgᵀ + spot·spotᵀ) / 2 / T)``.  No L2 normalisation happens here: normalise the
    embeddings first if wanted.

    Parameters
    ----------
    img_emb, spot_emb
        (B, D) embeddings; row i of both belongs to the same spot.
    temperature
        Softmax temperature T (a float or a 0-d tensor, e.g. a learnable parameter's exp()).
    targets
        ``"hard"`` or ``"soft"``.

    Returns
    -------
    torch.Tensor
        0-d mean loss (float32).
    """
    img = img_emb.float()
    spot = spot_emb.float()
    logits = spot @ img.T / temperature
    if targets == "hard":
        labels = torch.arange(len(logits), device=logits.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    if targets == "soft":
        sim = (img @ img.T + spot @ spot.T) / 2
        soft = F.softmax(sim / temperature, dim=-1)
        spots_loss = -(soft * F.log_softmax(logits, dim=-1)).sum(dim=1)
        images_loss = -(soft.T * F.log_softmax(logits.T, dim=-1)).sum(dim=1)
        return 0.5 * (spots_loss + images_loss).mean()
    raise ValueError(f"targets must be 'hard' or 'soft', not {targets!r}")
