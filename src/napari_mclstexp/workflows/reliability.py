"""Per-gene held-out reliability of a freshly trained bundle (see :mod:`napari_mclstexp.analysis.reliability`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..analysis.metrics import pearson_per_gene
from ..analysis.reliability import METHOD, RELIABLE_R
from ..data.genes import expression_matrix
from ..data.patches import iter_sample_patches
from ..data.scales import value_normalization
from ..predict.retrieval import retrieve
from ..predict.spots import bundle_precision, embed_patches, patch_px_for, prepare_model, resolve
from ..progress import CancelToken, Progress, ProgressGen
from ..sample import microns_per_pixel


def _held_out_groups(bank: Any) -> list[np.ndarray]:
    """Boolean masks over the bank: one per section, or left/right halves of a single section."""
    sections = np.asarray(bank.sections)
    names = list(dict.fromkeys(sections.tolist()))
    if len(names) > 1:
        return [sections == s for s in names]
    half = np.arange(len(sections)) < len(sections) // 2
    return [half, ~half]


def iter_gene_reliability(
    bundle: Any,
    samples: Sequence[Any],
    *,
    device: str = "auto",
    patch_cache: Any = None,
    cancel: CancelToken | None = None,
) -> ProgressGen[dict[str, Any]]:
    """Generator: held-out per-gene reliability of ``bundle`` on its training ``samples``.

    Parameters
    ----------
    bundle
        A :class:`~napari_mclstexp.bundle.Bundle` whose bank holds ``samples``' spots.
    samples
        The training sections (with images), in bank order.
    device
        Where to run the image encoder.
    patch_cache
        A :class:`~napari_mclstexp.data.patches.PatchCache` holding the training patches (no extraction
        again), or ``None``.

    Yields
    ------
    Progress
        Stage ``"reliability"``, one step per held-out group.

    Returns
    -------
    dict
        ``genes``, ``r`` (lists), ``threshold`` (:data:`RELIABLE_R`), ``method``, ``n_spots``.
    """
    dev = resolve(device)
    cfg = bundle.config
    model = prepare_model(bundle, dev)
    embs = []
    for adata in samples:
        size = patch_px_for(bundle, microns_per_pixel(adata))
        patches = yield from iter_sample_patches(adata, size, int(cfg["input_px"]), patch_cache, cancel)
        emb = yield from embed_patches(model, patches, dev, 64, precision=bundle_precision(bundle), cancel=cancel)
        embs.append(emb.float().cpu().numpy())
    query = np.concatenate(embs) if embs else np.zeros((0, int(cfg["embed_dim"])), np.float32)
    # on the scale of the bank's values, which the predictions average (paper: per gene)
    truth = np.concatenate([expression_matrix(a, bundle.genes, value_normalization(cfg)) for a in samples])
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
    r = pearson_per_gene(pred, truth)[0]
    return {
        "genes": [str(g) for g in bundle.genes],
        "r": [None if not np.isfinite(v) else float(v) for v in r],
        "threshold": RELIABLE_R,
        "method": METHOD,
        "n_spots": int(len(query)),
    }
