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
from ..predict import novelty
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


def within_section_r(pred: np.ndarray, truth: np.ndarray, sections: np.ndarray) -> np.ndarray:
    """Per-gene Pearson r of held-out predictions, each section's mean removed from both first.

    Pooling raw values over sections would score how well the *section* means are swapped in: a gene whose
    level differs between two sections gets a negative r from leave-one-section-out retrieval, whatever the
    image shows (an untrained model scored the same as a trained one).  Within one section (halves) this
    is the plain Pearson r.
    """
    sections = np.asarray(sections)
    pred, truth = np.array(pred, dtype=np.float64), np.array(truth, dtype=np.float64)
    for name in dict.fromkeys(sections.tolist()):
        rows = sections == name
        pred[rows] -= pred[rows].mean(axis=0)
        truth[rows] -= truth[rows].mean(axis=0)
    return pearson_per_gene(pred, truth)[0]


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
    order; mapped to the bundle's reference stain when it has one, as predictions map them).  Then
    :func:`iter_gene_reliability`, whose blend and neighbour weights and per-gene r go to
    ``metadata['descriptors']``, ``['smoothing']`` and ``['reliability']``.  A bundle without a bank (ridge
    head) is returned as it is.
    """
    if not len(bundle.bank):
        return bundle
    if bundle.config.get("descriptors"):
        from ..data.descriptors import iter_sample_descriptors
        from ..predict.spots import patch_px_for

        parts, stain = [], stain_normaliser(bundle, "auto")
        for adata in samples:
            crop = patch_px_for(bundle, microns_per_pixel(adata))
            input_px = bundle.config["input_px"]
            parts.append((yield from iter_sample_descriptors(adata, crop, input_px, patch_cache, cancel, stain=stain)))
        bundle.descriptors = np.concatenate(parts).astype(np.float32)
    reliability = yield from iter_gene_reliability(
        bundle, samples, device=device, patch_cache=patch_cache, cancel=cancel
    )
    bundle.metadata["smoothing"] = reliability.pop("smoothing")  # the neighbour weight predictions use
    if "descriptors" in reliability:
        from ..data.descriptors import VERSION

        # the stored descriptors' definition (absent: version 1, descriptors_v1)
        bundle.metadata["descriptors"] = {**reliability.pop("descriptors"), "version": VERSION}
    if "novelty" in reliability:
        bundle.novelty_reference = reliability.pop("novelty_reference")
        bundle.metadata["novelty"] = reliability.pop("novelty")
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
        ``novelty`` and ``novelty_reference``: :func:`~napari_mclstexp.predict.novelty.calibrate_reference` on
        the same spots' image embeddings and held-out groups (with ``bundle.descriptors`` also their tissue
        descriptors: ``novelty['descriptors']``).
    """
    cfg = bundle.config
    query = yield from _iter_query_embeddings(bundle, samples, device, patch_cache, cancel)
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
    if n_query > 1:  # novelty reference and calibration from the same held-out groups
        extra["novelty_reference"], extra["novelty"] = novelty.calibrate_reference(
            query,
            _group_ids(groups),
            direct=False,
            groups=_group_kind(sections),
            descriptors=None if descriptors is None else np.asarray(descriptors)[:n_query],
        )
    r = within_section_r(pred, truth, sections)
    return {
        "genes": [str(g) for g in bundle.genes],
        "r": [None if not np.isfinite(v) else float(v) for v in r],
        "threshold": RELIABLE_R,
        "method": METHOD,
        "n_spots": int(n_query),
        "smoothing": smoothing,
        **extra,
    }


def _iter_query_embeddings(
    bundle: Any, samples: Sequence[Any], device: str, patch_cache: Any, cancel: CancelToken | None
) -> ProgressGen[np.ndarray]:
    """``(N, D)`` float32: the model's image embeddings (ridge: outputs) of every spot of ``samples``, in order
    (their patches mapped to the bundle's reference stain when it has one, as predictions map them)."""
    dev = resolve(device)
    model = prepare_model(bundle, dev)
    embs, stain = [], stain_normaliser(bundle, "auto")
    for adata in samples:
        read_px, out_px = view_px_for(bundle, microns_per_pixel(adata))
        patches = yield from iter_sample_patches(adata, read_px, out_px, patch_cache, cancel, stain)
        emb = yield from embed_patches(model, patches, dev, 64, precision=bundle_precision(bundle), cancel=cancel)
        embs.append(emb.float().cpu().numpy())
    return np.concatenate(embs) if embs else np.zeros((0, int(bundle.config["embed_dim"])), np.float32)


def _group_kind(sections: np.ndarray) -> str:
    return "sections" if len(set(np.asarray(sections).tolist())) > 1 else "halves"


def iter_reference_novelty(
    bundle: Any,
    samples: Sequence[Any],
    *,
    device: str = "auto",
    patch_cache: Any = None,
    cancel: CancelToken | None = None,
) -> ProgressGen[None]:
    """Generator: a bank-less (ridge) bundle's novelty reference and calibration (its head outputs on the
    training spots, :func:`~napari_mclstexp.predict.novelty.calibrate_reference`)."""
    out = yield from _iter_query_embeddings(bundle, samples, device, patch_cache, cancel)
    from ..sample import section_name

    if len(out) < 2:
        return
    sections = np.concatenate([[section_name(a, i)] * a.n_obs for i, a in enumerate(samples)])
    groups = _held_out_groups(sections)
    bundle.novelty_reference, bundle.metadata["novelty"] = novelty.calibrate_reference(
        out, _group_ids(groups), direct=True, groups=_group_kind(sections)
    )


def _group_ids(groups: list[np.ndarray]) -> np.ndarray:
    """One group number per spot from the held-out masks."""
    ids = np.zeros(len(groups[0]) if groups else 0, np.int64)
    for i, held in enumerate(groups):
        ids[held] = i
    return ids
