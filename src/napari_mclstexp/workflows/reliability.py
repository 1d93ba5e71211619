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
from ..predict.descriptor_model import blend, choose_weight, fit_descriptor_model
from ..predict.retrieval import retrieve
from ..predict.smoothing import choose_alpha, smooth_sections
from ..predict.spots import bundle_precision, embed_patches, prepare_model, resolve, view_px_for
from ..predict.stain_choice import stain_normaliser
from ..progress import CancelToken, Progress, ProgressGen
from ..sample import microns_per_pixel, spot_xy


def _held_out_groups(sections: np.ndarray) -> list[np.ndarray]:
    """Boolean masks over the query spots: one per section, or left/right halves of a single section."""
    sections = np.asarray(sections)
    names = list(dict.fromkeys(sections.tolist()))
    if len(names) > 1:
        return [sections == s for s in names]
    half = np.arange(len(sections)) < len(sections) // 2
    return [half, ~half]


def held_out_descriptor_predictions(descriptors: np.ndarray, truth: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """``(N, G)``: each group predicted by descriptor trees fitted on the other groups' spots."""
    out = np.zeros(truth.shape, np.float32)
    for held in groups:
        if held.any() and (~held).sum() >= 2:
            out[held] = fit_descriptor_model(descriptors[~held], truth[~held]).predict(descriptors[held])
    return out


def iter_finish_bundle(
    bundle: Any,
    samples: Sequence[Any],
    *,
    device: str = "auto",
    patch_cache: Any = None,
    cancel: CancelToken | None = None,
) -> ProgressGen[Any]:
    """Generator: what a freshly made bundle gets before it is saved or used (train and cv alike).

    With ``config['descriptors']``: the tissue descriptors of the bank's image spots (``samples``, in bank
    order; mapped to the bundle's reference stain, as predictions are).  Then :func:`iter_gene_reliability`,
    whose blend and neighbour weights and per-gene r go to ``metadata['descriptors']``, ``['smoothing']`` and
    ``['reliability']``.  A bundle without a bank (ridge head) is returned as it is.
    """
    if not len(bundle.bank):
        return bundle
    if bundle.config.get("descriptors"):
        from ..data.descriptors import iter_sample_descriptors
        from ..predict.spots import patch_px_for

        parts, stain = [], stain_normaliser(bundle, "auto")
        for adata in samples:
            crop = patch_px_for(bundle, microns_per_pixel(adata))
            parts.append(
                (yield from iter_sample_descriptors(adata, crop, bundle.config["input_px"], patch_cache, cancel, stain))
            )
        bundle.descriptors = np.concatenate(parts).astype(np.float32)
    reliability = yield from iter_gene_reliability(
        bundle, samples, device=device, patch_cache=patch_cache, cancel=cancel
    )
    bundle.metadata["smoothing"] = reliability.pop("smoothing")  # the neighbour weight predictions use
    if "descriptors" in reliability:
        bundle.metadata["descriptors"] = reliability.pop("descriptors")
    bundle.metadata["reliability"] = reliability
    return bundle


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
        ``genes``, ``r`` (lists), ``threshold`` (:data:`RELIABLE_R`), ``method``, ``n_spots``, and
        ``smoothing``: the neighbour weight chosen on the same held-out predictions
        (:func:`~napari_mclstexp.predict.smoothing.choose_alpha`); ``r`` is measured after it.  With
        ``bundle.descriptors``, also ``descriptors``: the blend weight of the descriptor predictions
        (:func:`~napari_mclstexp.predict.descriptor_model.choose_weight`), chosen before the neighbour weight.
    """
    dev = resolve(device)
    cfg = bundle.config
    model = prepare_model(bundle, dev)
    embs, stain = [], stain_normaliser(bundle, "auto")  # the training patches' stain mapping, as predictions'
    for adata in samples:
        read_px, out_px = view_px_for(bundle, microns_per_pixel(adata))
        patches = yield from iter_sample_patches(adata, read_px, out_px, patch_cache, cancel, stain)
        emb = yield from embed_patches(model, patches, dev, 64, precision=bundle_precision(bundle), cancel=cancel)
        embs.append(emb.float().cpu().numpy())
    query = np.concatenate(embs) if embs else np.zeros((0, int(cfg["embed_dim"])), np.float32)
    # on the scale of the bank's values, which the predictions average (paper: per gene)
    truth = np.concatenate([expression_matrix(a, bundle.genes, value_normalization(cfg)) for a in samples])
    pred = np.zeros_like(truth)
    n_bank, n_query = len(bundle.bank), len(query)
    sections = np.asarray(bundle.bank.sections)[:n_query]  # the image sections come first in the bank
    groups = _held_out_groups(sections)
    for i, held in enumerate(groups):
        if cancel is not None:
            cancel.raise_if_cancelled()
        out = np.zeros(n_bank, bool)  # expression-only extra sections always stay in the reference
        out[:n_query] = held
        k = min(int(cfg["k"]), int((~out).sum()))  # one small section: its halves hold fewer than k spots
        if held.any() and k >= 1:
            result = retrieve(query[held], bundle.bank.subset(~out), k, cfg["distance"])
            pred[held] = np.asarray(result.prediction)
        yield Progress("reliability", i + 1, len(groups), message="held-out genes")
    xy = np.concatenate([spot_xy(a) for a in samples]) if samples else np.zeros((0, 2))
    descriptors = getattr(bundle, "descriptors", None)
    extra: dict[str, Any] = {}
    if descriptors is not None and n_query:
        # the descriptor predictor's blend weight, then the neighbour weight, on the same held-out groups
        from_descriptors = held_out_descriptor_predictions(np.asarray(descriptors)[:n_query], truth, groups)
        extra["descriptors"], smoothing = choose_weight(pred, from_descriptors, truth, xy, sections)
        pred = blend(pred, from_descriptors, extra["descriptors"]["weight"])
    else:  # the neighbour weight: chosen on these held-out predictions, groups (sections or halves) apart
        smoothing = choose_alpha(pred, truth, xy, sections) if n_query else {"alpha": 0.0}
    pred = smooth_sections(pred, xy, sections, smoothing["alpha"])  # reliability of what users get
    r = pearson_per_gene(pred, truth)[0]
    return {
        "genes": [str(g) for g in bundle.genes],
        "r": [None if not np.isfinite(v) else float(v) for v in r],
        "threshold": RELIABLE_R,
        "method": METHOD,
        "n_spots": int(n_query),
        "smoothing": smoothing,
        **extra,
    }
