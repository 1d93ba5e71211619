"""Per-gene reliability of a bundle: how well each gene is predicted on spots its bank has not seen.

At training time (after the bank is built) each training section is predicted from a bank *without*
that section (leave-one-section-out retrieval; one section alone is split into left and right halves),
and each gene's Pearson r between predicted and measured normalised expression over all held-out spots
is its reliability.  The image encoder did see those spots during training, so the figures are an
optimistic bound: a gene with a low r here is not worth reading on new slides.

Stored in ``bundle.metadata['reliability']`` and copied by predictions into
``uns['mclstexp']['reliability']``: ``{"genes": [...], "r": [...], "threshold", "method", "n_spots"}``
(lists, so ``.h5ad`` files keep them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..progress import CancelToken, Progress, ProgressGen

#: Genes whose held-out r is below this are marked unreliable in the viewer and in exports.
RELIABLE_R = 0.3
METHOD = "leave-one-section-out retrieval"


def pearson_per_gene(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(G,)`` Pearson r of each column of ``pred`` (N, G) with ``truth`` (N, G); NaN when either
    column is constant."""
    p = np.asarray(pred, np.float64) - np.mean(pred, axis=0)
    t = np.asarray(truth, np.float64) - np.mean(truth, axis=0)
    denom = np.sqrt((p * p).sum(0) * (t * t).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (p * t).sum(0) / denom
    r[~(denom > 1e-12)] = np.nan
    return r.astype(np.float32)


def _held_out_groups(bank: Any) -> list[np.ndarray]:
    """Boolean masks over the bank: one per section, or left/right halves of a single section."""
    sections = np.asarray(bank.sections)
    names = list(dict.fromkeys(sections.tolist()))
    if len(names) > 1:
        return [sections == s for s in names]
    half = np.arange(len(sections)) < len(sections) // 2
    return [half, ~half]


def iter_gene_reliability(bundle: Any, samples: Sequence[Any], *, device: str = "auto",
                          cancel: CancelToken | None = None) -> ProgressGen[dict[str, Any]]:
    """Generator: held-out per-gene reliability of ``bundle`` on its training ``samples``.

    Parameters
    ----------
    bundle
        A :class:`~napari_mclstexp.bundle.Bundle` whose bank holds ``samples``' spots.
    samples
        The training sections (with images), in bank order.
    device
        Where to run the image encoder.

    Yields
    ------
    Progress
        Stage ``"reliability"``, one step per held-out group.

    Returns
    -------
    dict
        ``genes``, ``r`` (lists), ``threshold`` (:data:`RELIABLE_R`), ``method``, ``n_spots``.
    """
    from ..data.genes import expression_matrix
    from ..data.patches import iter_sample_patches
    from ..predict.retrieval import retrieve
    from ..predict.spots import embed_patches, patch_px_for, prepare_model, resolve
    from ..sample import microns_per_pixel

    dev = resolve(device)
    cfg = bundle.config
    model = prepare_model(bundle, dev)
    embs = []
    for adata in samples:
        size = patch_px_for(bundle, microns_per_pixel(adata))
        patches = yield from iter_sample_patches(adata, size, int(cfg["input_px"]), None, cancel)
        emb = yield from embed_patches(model, patches, dev, 64, cancel=cancel)
        embs.append(emb.float().cpu().numpy())
    query = np.concatenate(embs) if embs else np.zeros((0, int(cfg["embed_dim"])), np.float32)
    truth = np.concatenate([expression_matrix(a, bundle.genes, cfg["normalization"]) for a in samples])
    pred = np.zeros_like(truth)
    n_bank = len(bundle.bank)
    if len(query) != n_bank:  # extra expression-only sections in the bank: no images to query with
        groups = [np.zeros(len(query), bool)]
    else:
        groups = _held_out_groups(bundle.bank)
    for i, held in enumerate(groups):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if held.any() and (~held).sum() >= int(cfg["k"]):
            result = retrieve(query[held], bundle.bank.subset(~held), int(cfg["k"]), cfg["distance"])
            pred[held] = np.asarray(result.prediction)
        yield Progress("reliability", i + 1, len(groups), message="held-out genes")
    r = pearson_per_gene(pred, truth)
    return {"genes": [str(g) for g in bundle.genes], "r": [None if not np.isfinite(v) else float(v) for v in r],
            "threshold": RELIABLE_R, "method": METHOD, "n_spots": int(len(query))}


def reliability_map(info: dict | None) -> dict[str, float]:
    """``{gene: r}`` from a stored reliability record (missing or undefined r → NaN); ``{}`` for none."""
    if not isinstance(info, dict) or "genes" not in info:
        return {}
    return {str(g): (float(r) if r is not None else float("nan"))
            for g, r in zip(info["genes"], info["r"], strict=True)}


def best_gene(genes: Sequence[str], reliability: dict[str, float], values: np.ndarray | None = None) -> str | None:
    """The gene to show first: the most reliable one, else the most variable predicted one
    (``values`` (N, G)), else the first."""
    genes = [str(g) for g in genes]
    if not genes:
        return None
    scored = [(r, g) for g, r in reliability.items() if g in genes and np.isfinite(r)]
    if scored:
        return max(scored)[1]
    if values is not None and len(values):
        var = np.nanvar(np.asarray(values, np.float64), axis=0)
        if np.isfinite(var).any():
            return genes[int(np.nanargmax(var))]
    return genes[0]
