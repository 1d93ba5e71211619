"""Spot encoder: expression + learnable x/y position embeddings → pre-norm Transformer blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention (qkv without bias, output projection back to ``dim``)."""

    def __init__(self, dim: int, heads: int = 8, head_dim: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.dropout = dropout
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class Block(nn.Module):
    """Pre-norm Transformer block: ``x + MHSA(LN(x))`` then ``x + FFN(LN(x))`` (FFN with GELU)."""

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, head_dim, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class SpotEncoder(nn.Module):
    """``h = expr + x_embed(x) + y_embed(y)`` → ``depth`` pre-norm blocks (dimension = n_genes).

    Parameters
    ----------
    n_genes
        Panel size G (the token dimension).
    pos_shape
        Rows of the x and y position tables; indices are clamped into range.
    heads, head_dim, mlp_ratio, depth, dropout
        Transformer shape (paper: 8 × 64, FFN G → G, 2 blocks, dropout 0).
    """

    def __init__(
        self,
        n_genes: int,
        pos_shape: tuple[int, int],
        heads: int = 8,
        head_dim: int = 64,
        mlp_ratio: float = 1.0,
        depth: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.pos_shape = (int(pos_shape[0]), int(pos_shape[1]))
        self.x_embed = nn.Embedding(self.pos_shape[0], n_genes)
        self.y_embed = nn.Embedding(self.pos_shape[1], n_genes)
        mlp_dim = max(1, int(round(mlp_ratio * n_genes)))
        self.blocks = nn.Sequential(*[Block(n_genes, heads, head_dim, mlp_dim, dropout) for _ in range(depth)])

    def forward(self, expr: torch.Tensor, pos: torch.Tensor, context: str = "spot") -> torch.Tensor:
        """Embed spots.

        Parameters
        ----------
        expr
            (N, G) normalised expression.
        pos
            (N, 2) long table indices (x, y).
        context
            ``"batch"``: the N spots form one attention sequence (paper); ``"spot"``: each spot is its
            own sequence (no cross-spot attention).

        Returns
        -------
        torch.Tensor
            (N, G) features.
        """
        pos = pos.long()
        x = pos[:, 0].clamp(0, self.pos_shape[0] - 1)
        y = pos[:, 1].clamp(0, self.pos_shape[1] - 1)
        h = expr + self.x_embed(x) + self.y_embed(y)
        h = h.unsqueeze(0) if context == "batch" else h.unsqueeze(1)
        h = self.blocks(h)
        return h.squeeze(0) if context == "batch" else h.squeeze(1)
