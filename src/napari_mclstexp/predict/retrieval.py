"""Prediction by retrieval: cosine top-k over a reference bank, inverse-square-distance weights.

mclSTExp predicts a query spot's expression as a weighted average of the expression of the reference
spots whose *spot embeddings* are most similar (cosine) to the query's *image embedding*.  Weights are
``1 / d²`` with ``d`` the L1 or L2 distance between the raw (not L2-normalised) query and key embeddings,
normalised to sum 1 (METHOD.md, "Inference").

Everything runs in blocks of queries so that no ``(N queries × M keys)`` matrix is ever materialised:
each block holds at most ``max_elements`` similarity scores and ``max_elements`` gathered values.  The
same code runs on CPU and GPU tensors (``torch.topk``); numpy inputs give numpy outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: Default cap on the elements of one block's work matrices (2**25 float32 = 128 MiB).
DEFAULT_MAX_ELEMENTS = 2**25

DISTANCES = ("l1", "l2")


@dataclass
class Retrieval:
    """Result of :func:`retrieve` for ``N`` queries, ``k`` neighbours and ``G`` genes.

    Attributes
    ----------
    prediction
        ``(N, G)`` float32: Σ wᵢ · exprᵢ over the neighbours.
    uncertainty
        ``(N,)`` float32: the weighted standard deviation of the neighbours' expression,
        ``sqrt(Σ wᵢ (exprᵢ − prediction)²)`` per gene, averaged over genes (same units as the
        expression, e.g. log10 normalised counts).  0 when all neighbours agree.
    indices
        ``(N, k)`` int64 row indices into the bank, most similar (cosine) first.
    weights
        ``(N, k)`` float32, non-negative, each row sums to 1.

    Arrays are torch tensors on the queries' device when the queries were a tensor, numpy otherwise.
    """

    prediction: Any
    uncertainty: Any
    indices: Any
    weights: Any


def inverse_square_weights(d: torch.Tensor) -> torch.Tensor:
    """Row-normalised ``1 / d²`` weights from distances ``d`` (…, k).

    A distance of exactly 0 (a key identical to the query) would give an infinite weight; the limit of
    ``1/d²`` normalisation is then equal weight over the zero-distance keys and 0 for the others, which
    is what rows containing a zero get.

    Parameters
    ----------
    d
        Non-negative distances, float.

    Returns
    -------
    torch.Tensor
        Weights of the same shape, each row summing to 1.
    """
    d = d.float()
    zero = d <= 0
    has_zero = zero.any(dim=-1, keepdim=True)
    w = torch.where(has_zero, zero.float(), 1.0 / d.clamp_min(torch.finfo(torch.float32).tiny).square())
    # 1/d² overflows to inf for denormal-small d: treat those like exact matches.
    inf = torch.isinf(w)
    w = torch.where(inf.any(dim=-1, keepdim=True), inf.float(), w)
    return w / w.sum(dim=-1, keepdim=True)


def weighted_mean_std(
    weights: torch.Tensor, indices: torch.Tensor, values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean and gene-averaged weighted standard deviation of gathered neighbour values.

    Parameters
    ----------
    weights
        ``(B, k)`` row-normalised weights.
    indices
        ``(B, k)`` rows of ``values``.
    values
        ``(M, G)`` float32 reference values (normalised expression).

    Returns
    -------
    mean, uncertainty
        ``(B, G)`` weighted mean and ``(B,)`` weighted std averaged over genes.
    """
    neigh = values[indices]  # (B, k, G)
    w = weights.unsqueeze(-1)
    mean = (w * neigh).sum(dim=1)
    var = (w * (neigh - mean.unsqueeze(1)).square()).sum(dim=1)
    return mean, var.clamp_min(0).sqrt().mean(dim=-1)


def pair_distance(queries: torch.Tensor, keys: torch.Tensor, distance: str) -> torch.Tensor:
    """Distance between each query ``(B, D)`` and its gathered keys ``(B, k, D)`` → ``(B, k)``."""
    diff = queries.unsqueeze(1) - keys
    if distance == "l1":
        return diff.abs().sum(dim=-1)
    if distance == "l2":
        return torch.linalg.vector_norm(diff, dim=-1)
    raise ValueError(f"distance must be one of {DISTANCES}, not {distance!r}")


def _bank_tensors(bank: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings, expression) of ``bank`` as float32 tensors on ``device``."""
    if hasattr(bank, "tensors"):
        return bank.tensors(device)
    keys, values = bank.embeddings, bank.expression
    keys = torch.as_tensor(np.asarray(keys) if not torch.is_tensor(keys) else keys)
    values = torch.as_tensor(np.asarray(values) if not torch.is_tensor(values) else values)
    return keys.to(device=device, dtype=torch.float32), values.to(device=device, dtype=torch.float32)


def _unit_keys(bank: Any, keys: torch.Tensor) -> torch.Tensor:
    """``keys`` scaled to unit length, kept in the bank's tensor cache (a whole slide retrieves batch by batch
    from one bank: normalising it once, not per batch)."""
    cache = getattr(bank, "_cache", None)
    if not isinstance(cache, dict):
        return F.normalize(keys, dim=1)
    key = f"unit:{keys.device}"
    hit = cache.get(key)
    if hit is None or hit[0] is not keys:
        hit = cache[key] = (keys, F.normalize(keys, dim=1))
    return hit[1]


def block_size(n_keys: int, k: int, dim: int, n_genes: int, max_elements: int) -> int:
    """Queries per block so that neither the similarity block nor the gathered values exceed the cap."""
    per_query = max(n_keys, k * max(dim, n_genes), 1)
    return max(1, int(max_elements // per_query))


@torch.inference_mode()
def retrieve(
    queries: torch.Tensor | np.ndarray,
    bank: Any,
    k: int,
    distance: str = "l2",
    *,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Retrieval:
    """Predict expression for query image embeddings by top-k retrieval from a reference bank.

    Parameters
    ----------
    queries
        ``(N, D)`` image embeddings (torch tensor on any device, or numpy).  Any float dtype; work is
        done in float32.
    bank
        A :class:`~napari_mclstexp.model.bank.ReferenceBank` (or any object with ``embeddings``
        ``(M, D)`` and ``expression`` ``(M, G)``); it is moved to the queries' device.
    k
        Neighbours per query; clipped to the bank size ``M``.
    distance
        ``"l1"`` or ``"l2"``: distance between raw embeddings that sets the ``1/d²`` weights.
        (Neighbours are always chosen by cosine similarity.)
    max_elements
        Cap on the elements of each block's work matrices (memory ≈ 4 bytes × cap × 2).

    Returns
    -------
    Retrieval
        Prediction, uncertainty, neighbour indices and weights.
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, not {distance!r}")
    as_numpy = not torch.is_tensor(queries)
    q_all = torch.as_tensor(np.asarray(queries)) if as_numpy else queries
    if q_all.ndim != 2:
        raise ValueError(f"queries must be (N, D), got shape {tuple(q_all.shape)}")
    device = q_all.device
    keys, values = _bank_tensors(bank, device)
    if keys.shape[1] != q_all.shape[1]:
        raise ValueError(f"query dim {q_all.shape[1]} != bank embedding dim {keys.shape[1]}")
    n, m, g = q_all.shape[0], keys.shape[0], values.shape[1]
    if m == 0:
        raise ValueError("the reference bank is empty")
    k = max(1, min(int(k), m))
    keys_unit = _unit_keys(bank, keys)
    step = block_size(m, k, keys.shape[1], g, max_elements)

    pred = torch.empty((n, g), dtype=torch.float32, device=device)
    unc = torch.empty((n,), dtype=torch.float32, device=device)
    idx = torch.empty((n, k), dtype=torch.int64, device=device)
    wts = torch.empty((n, k), dtype=torch.float32, device=device)
    for start in range(0, n, step):
        q = q_all[start : start + step].float()
        sim = F.normalize(q, dim=1) @ keys_unit.T
        top = torch.topk(sim, k, dim=1, largest=True, sorted=True).indices
        del sim
        w = inverse_square_weights(pair_distance(q, keys[top], distance))
        mean, spread = weighted_mean_std(w, top, values)
        sl = slice(start, start + q.shape[0])
        pred[sl], unc[sl], idx[sl], wts[sl] = mean, spread, top, w

    if as_numpy:
        return Retrieval(pred.cpu().numpy(), unc.cpu().numpy(), idx.cpu().numpy(), wts.cpu().numpy())
    return Retrieval(pred, unc, idx, wts)
