"""Projection heads mapping encoder features to the shared embedding space (METHOD.md)."""

from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """``p = W1 x``; ``y = LayerNorm(Dropout(W2 GELU(p)) + p)`` (as mclSTExp / BLEEP).

    Parameters
    ----------
    in_dim
        Feature size of the encoder.
    out_dim
        Embedding size (256 in the paper).
    dropout
        Dropout probability after the second linear layer.
    """

    def __init__(self, in_dim: int, out_dim: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.projection = nn.Linear(in_dim, out_dim)
        self.gelu = nn.GELU()
        self.fc = nn.Linear(out_dim, out_dim)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = self.projection(x)
        x = self.dropout(self.fc(self.gelu(projected)))
        return self.layer_norm(x + projected)
