"""Novelty: how unlike the training images a spot's (bin's, tile's) image is, as a held-out percentile.

*Typicality* of an image embedding (what retrieval or the head reads) is its mean cosine similarity to its
``k`` most similar *reference* embeddings: the image embeddings of a seeded sample of at most
:data:`REFERENCE_MAX` training spots, stored in the bundle (``novelty_reference``; a ridge bundle, whose
"embeddings" are its outputs, compares them after centring on the reference mean).  Image to image rather
than image to the bank's spot embeddings: the cross-modal cosine hardly moved when the image's stain or
texture changed (synthetic slides), the image-to-image one did.  At training time the leave-one-section-out
pass of per-gene reliability (:mod:`napari_mclstexp.workflows.reliability`; halves of a single section)
scores every training spot against the reference spots *of the other sections*, and the sorted held-out
typicalities are kept as :data:`N_QUANTILES` quantiles (``metadata['novelty']``).  A predicted spot's

    novelty = fraction of held-out training spots that were more typical than it (0–1),

so a spot like the held-out training spots reads as a uniform percentile and ``novelty > level`` (default
0.99: below the 1st held-out percentile of typicality) marks it *novel*; ``novel_fraction`` is the share
of novel spots.  Bundles without a calibration (format 1) predict without ``obs['novelty']``.

*Tissue-descriptor typicality* sees what a small model's image embedding can miss: the demo model, trained on
one synthetic slide, embeds real HER2+ tissue inside its training set (cosines 0.90–0.97, held-out halves
0.46–1.00), while the fixed stain, colour and texture statistics (:mod:`napari_mclstexp.data.descriptors`)
put it 20–100 times farther from the training spots than any held-out spot.  For a bundle with stored
training descriptors (``bundle.descriptors``) it is minus the mean Euclidean distance of a spot's descriptors,
z-scored with the training descriptors' mean and standard deviation, to its ``k`` nearest of a seeded sample
of at most :data:`REFERENCE_MAX` training descriptors, calibrated on the same held-out groups
(``metadata['novelty']['descriptors']``, optional).  A spot's two percentiles are joined by their maximum,
which is itself calibrated on the held-out spots (``['descriptors']['combined']``): novelty stays the
fraction of held-out training spots that were more typical (by the larger of their two percentiles), so the
0.99 level still marks about 1 % of like spots.  A prediction that has no descriptors of its spots, or a
bundle without the key (older, or without descriptors such as the ridge head), scores the image alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from ..bundle import Bundle

#: Novelty above this level marks a spot novel (its typicality is below this held-out percentile's complement).
DEFAULT_LEVEL = 0.99
#: Held-out typicality quantiles kept in the bundle (0, 0.001, …, 1).
N_QUANTILES = 1001
#: Training spots kept as the reference of a bundle without a bank (ridge head).
REFERENCE_MAX = 4096
#: Neighbours whose similarities are averaged (at most the bank size).
DEFAULT_K = 10
#: A novel fraction above this is worth a warning (CLI, viewer).
WARN_FRACTION = 0.2
METHOD = (
    "mean cosine similarity of the image embedding to its k most similar reference embeddings; novelty = "
    "fraction of held-out training spots (leave one section out, or halves of one section) more typical"
)
DESCRIPTOR_METHOD = (
    "minus the mean Euclidean distance of the z-scored tissue descriptors to the k nearest reference training "
    "descriptors; a spot's novelty is the held-out percentile of the larger of its image and descriptor percentiles"
)


@torch.inference_mode()
def typicality(
    queries: Any, keys: Any, k: int = DEFAULT_K, *, centre: Any = None, max_elements: int = 2**25
) -> np.ndarray:
    """``(N,)`` float32: mean cosine similarity of each query to its ``k`` most similar keys.

    Parameters
    ----------
    queries, keys
        ``(N, D)`` and ``(M, D)`` embeddings (numpy or torch; work in float32 on the queries' device).
    k
        Neighbours averaged (clipped to ``M``).
    centre
        ``(D,)`` subtracted from both before the cosine (ridge outputs); ``None``: raw embeddings.
    max_elements
        Cap on the similarity block (queries per block × ``M``).
    """
    q_all = torch.as_tensor(np.asarray(queries) if not torch.is_tensor(queries) else queries).float()
    kt = torch.as_tensor(np.asarray(keys) if not torch.is_tensor(keys) else keys).to(q_all.device).float()
    if centre is not None:
        c = torch.as_tensor(np.asarray(centre, np.float32), device=q_all.device)
        q_all, kt = q_all - c, kt - c
    n, m = q_all.shape[0], kt.shape[0]
    out = np.zeros(n, np.float32)
    if n == 0 or m == 0:
        return out
    k = max(1, min(int(k), m))
    keys_unit = F.normalize(kt, dim=1)
    step = max(1, int(max_elements // max(m, 1)))
    for start in range(0, n, step):
        sim = F.normalize(q_all[start : start + step], dim=1) @ keys_unit.T
        out[start : start + sim.shape[0]] = torch.topk(sim, k, dim=1).values.mean(1).cpu().numpy()
    return out


def calibrate(held_out: np.ndarray, *, k: int, space: str, groups: str, level: float = DEFAULT_LEVEL) -> dict[str, Any]:
    """The calibration stored in ``metadata['novelty']`` from held-out typicalities of training spots."""
    t = np.asarray(held_out, np.float64)
    t = t[np.isfinite(t)]
    if not len(t):
        raise ValueError("no held-out typicality to calibrate novelty on")
    quantiles = np.quantile(t, np.linspace(0.0, 1.0, N_QUANTILES))
    return {
        "method": METHOD,
        "space": space,
        "k": int(k),
        "groups": groups,
        "n_spots": int(len(t)),
        "level": float(level),
        "threshold": float(np.quantile(t, 1.0 - level)),  # typicality below this: novel
        "median": float(np.median(t)),
        "quantiles": [float(v) for v in quantiles],
    }


def novelty_from_typicality(t: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """``(N,)`` float32 in [0, 1]: the fraction of held-out training spots more typical than each ``t``."""
    q = np.maximum.accumulate(np.asarray(calibration["quantiles"], np.float64))
    below = np.interp(np.asarray(t, np.float64), q, np.linspace(0.0, 1.0, len(q)), left=0.0, right=1.0)
    return (1.0 - below).astype(np.float32)


def held_out_typicality(
    query: np.ndarray, group: np.ndarray, keys: np.ndarray, key_group: np.ndarray, k: int, *, centre: Any = None
) -> np.ndarray:
    """Typicality of every query against the keys of the *other* groups (sections, or halves of one)."""
    group, key_group = np.asarray(group), np.asarray(key_group)
    out = np.full(len(query), np.nan, np.float32)
    for g in np.unique(group):
        held, others = group == g, key_group != g
        if others.any():
            out[held] = typicality(query[held], keys[others], k, centre=centre)
    return out


def calibrate_reference(
    embeddings: np.ndarray,
    group: np.ndarray,
    *,
    direct: bool,
    groups: str,
    seed: int = 0,
    descriptors: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """``(reference, calibration)`` from the training spots' image embeddings (ridge: head outputs).

    A seeded sample of at most :data:`REFERENCE_MAX` spots becomes the reference (float32: the cosines of one
    model's embeddings differ in the 4th decimal, below float16's precision); every training
    spot is scored against the reference spots of the other groups, and the held-out typicalities are
    calibrated (:func:`calibrate`).  ``direct`` (ridge outputs): cosines after centring on the reference mean.
    With the same spots' tissue ``descriptors`` (the bundle's), also ``calibration['descriptors']``
    (:func:`calibrate_descriptors`, on the same groups).
    """
    emb = np.asarray(embeddings, np.float32)
    keep = np.sort(np.random.default_rng(seed).permutation(len(emb))[:REFERENCE_MAX])
    ref = emb[keep]
    centre = ref.mean(0) if direct else None
    held = held_out_typicality(emb, group, ref, np.asarray(group)[keep], DEFAULT_K, centre=centre)
    space = "head outputs, centred" if direct else "image embeddings"
    cal = calibrate(held, k=DEFAULT_K, space=space, groups=groups)
    if descriptors is not None and len(descriptors) == len(emb):
        cal["descriptors"] = calibrate_descriptors(
            descriptors, group, novelty_from_typicality(held, cal), groups=groups, seed=seed
        )
    return ref, cal


@torch.inference_mode()
def distance_typicality(queries: Any, keys: Any, k: int = DEFAULT_K, *, max_elements: int = 2**25) -> np.ndarray:
    """``(N,)`` float32: minus the mean Euclidean distance of each query to its ``k`` nearest keys."""
    q_all = torch.as_tensor(np.asarray(queries, np.float32))
    kt = torch.as_tensor(np.asarray(keys, np.float32))
    n, m = q_all.shape[0], kt.shape[0]
    out = np.zeros(n, np.float32)
    if n == 0 or m == 0:
        return out
    k = max(1, min(int(k), m))
    step = max(1, int(max_elements // max(m, 1)))
    for start in range(0, n, step):
        dist = torch.cdist(q_all[start : start + step], kt)
        out[start : start + dist.shape[0]] = -torch.topk(dist, k, dim=1, largest=False).values.mean(1).numpy()
    return out


def descriptor_space(descriptors: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, std, keep)`` of the training descriptors: their z-scoring and the reference sample's indices."""
    d = np.asarray(descriptors, np.float64)
    finite = np.where(np.isfinite(d), d, np.nan)
    mean = np.nan_to_num(np.nanmean(finite, 0)) if len(d) else np.zeros(d.shape[1])
    std = np.nan_to_num(np.nanstd(finite, 0)) if len(d) else np.ones(d.shape[1])
    std = np.where(std > 1e-6, std, 1.0)  # a constant descriptor: distances in its own units
    keep = np.sort(np.random.default_rng(seed).permutation(len(d))[:REFERENCE_MAX])
    return mean.astype(np.float32), std.astype(np.float32), keep


def zscore(descriptors: Any, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Descriptors z-scored with the training mean and std (non-finite values: 0, the training mean)."""
    z = (np.asarray(descriptors, np.float32) - mean) / std
    return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def calibrate_descriptors(
    descriptors: np.ndarray, group: np.ndarray, image_novelty: np.ndarray, *, groups: str, seed: int = 0
) -> dict[str, Any]:
    """``metadata['novelty']['descriptors']`` from the training spots' descriptors and held-out image novelty.

    Each group's descriptors are scored against the reference descriptors of the other groups
    (:func:`distance_typicality`, z-scored with all training descriptors) and calibrated as :func:`calibrate`;
    ``combined`` holds the quantiles of the held-out spots' larger percentile (image or descriptors), which
    :func:`combined_novelty` reads a prediction's against.
    """
    mean, std, keep = descriptor_space(descriptors, seed)
    z = zscore(descriptors, mean, std)
    group = np.asarray(group)
    held = np.full(len(z), np.nan, np.float32)
    for g in np.unique(group):
        mask, others = group == g, group[keep] != g
        if others.any():
            held[mask] = distance_typicality(z[mask], z[keep][others], DEFAULT_K)
    cal = calibrate(held, k=DEFAULT_K, space="tissue descriptors, z-scored", groups=groups)
    joined = np.maximum(np.asarray(image_novelty, np.float64), novelty_from_typicality(held, cal))
    joined = joined[np.isfinite(joined) & np.isfinite(held)]
    combined = np.quantile(joined, np.linspace(0.0, 1.0, N_QUANTILES)) if len(joined) else np.linspace(0, 1, 2)
    return {
        **cal,
        "method": DESCRIPTOR_METHOD,
        "n_reference": int(len(keep)),
        "combined": [float(v) for v in combined],
    }


def combined_novelty(image: np.ndarray, descriptors: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """``(N,)`` float32: the fraction of held-out training spots whose larger percentile was below each spot's."""
    q = np.maximum.accumulate(np.asarray(calibration["combined"], np.float64))
    joined = np.maximum(np.asarray(image, np.float64), np.asarray(descriptors, np.float64))
    return np.interp(joined, q, np.linspace(0.0, 1.0, len(q)), left=0.0, right=1.0).astype(np.float32)


def descriptor_novelty(bundle: Bundle, descriptors: Any) -> np.ndarray | None:
    """``(N,)`` descriptor percentiles of query descriptors (the bundle's definition) under the bundle's
    descriptor calibration, or ``None`` (no calibration, no stored descriptors, another width)."""
    cal = (bundle.metadata.get("novelty") or {}).get("descriptors")
    train = getattr(bundle, "descriptors", None)
    if not isinstance(cal, dict) or "combined" not in cal or train is None or descriptors is None:
        return None
    d = np.asarray(descriptors, np.float32)
    if d.ndim != 2 or d.shape[1] != np.asarray(train).shape[1]:
        return None
    cached = bundle.__dict__.get("_novelty_descriptor_space")
    if cached is None:  # the training descriptors' z-scoring and reference: once per bundle object
        mean, std, keep = descriptor_space(train)
        cached = (mean, std, zscore(np.asarray(train)[keep], mean, std))
        bundle.__dict__["_novelty_descriptor_space"] = cached
    mean, std, ref = cached
    return novelty_from_typicality(distance_typicality(zscore(d, mean, std), ref, int(cal.get("k", DEFAULT_K))), cal)


def wants_descriptors(bundle: Bundle, on: bool | float = True) -> bool:
    """Whether novelty reads the query spots' tissue descriptors (a descriptor calibration and descriptors).

    ``on`` is :attr:`PredictOptions.descriptors`: a user who switched the descriptors off asked for speed, so
    novelty is then scored on the image embeddings alone (``uns['mclstexp']['novelty']`` says so)."""
    cal = (getattr(bundle, "metadata", None) or {}).get("novelty")
    return (
        on is not False
        and on is not None
        and not (isinstance(on, float) and on == 0.0)
        and isinstance(cal, dict)
        and isinstance(cal.get("descriptors"), dict)
        and getattr(bundle, "descriptors", None) is not None
    )


def reference(bundle: Bundle) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(keys, centre)`` novelty is measured against: the stored reference sample (``None`` if absent)."""
    from .heads import is_direct

    ref = getattr(bundle, "novelty_reference", None)
    if ref is None or not len(ref):
        return None, None
    ref = np.asarray(ref, np.float32)
    return ref, (ref.mean(0) if is_direct(bundle) else None)


def score(bundle: Bundle, embedding: Any, descriptors: Any = None) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """Novelty of prediction embeddings (and tissue descriptors) under ``bundle``'s calibration.

    With ``descriptors`` (the query spots' tissue descriptors, the bundle's definition) and a descriptor
    calibration, each spot's novelty is :func:`combined_novelty` of its image and descriptor percentiles; the
    summary then also gives ``image_novel_fraction`` and ``descriptor_novel_fraction`` (each percentile alone
    above the level).

    Returns
    -------
    novelty, summary
        ``(N,)`` float32 and ``{"novel_fraction", "level", "n", "method", "scored_on"}``; ``(None, None)``
        for a bundle without a calibration (made before format 2) or without reference embeddings.
    """
    cal = bundle.metadata.get("novelty")
    keys, centre = reference(bundle)
    if not isinstance(cal, dict) or "quantiles" not in cal or keys is None:
        return None, None
    emb = np.asarray(embedding, np.float32)
    if emb.ndim != 2 or emb.shape[1] != np.asarray(keys).shape[1]:
        return None, None
    nov = novelty_from_typicality(typicality(emb, keys, int(cal.get("k", DEFAULT_K)), centre=centre), cal)
    level = float(cal.get("level", DEFAULT_LEVEL))
    summary: dict[str, Any] = {"level": level, "n": int(len(nov)), "method": cal.get("method", METHOD)}
    summary["scored_on"] = "image embeddings"
    from_descriptors = descriptor_novelty(bundle, descriptors)
    if from_descriptors is not None and len(from_descriptors) == len(nov):
        summary["image_novel_fraction"] = _fraction(nov, level)
        summary["descriptor_novel_fraction"] = _fraction(from_descriptors, level)
        summary["method"] = f"{summary['method']}; {DESCRIPTOR_METHOD}"
        summary["scored_on"] = "image embeddings and tissue descriptors"
        nov = combined_novelty(nov, from_descriptors, cal["descriptors"])
    return nov, {"novel_fraction": _fraction(nov, level), **summary}


def _fraction(nov: np.ndarray, level: float) -> float:
    return float((nov > level).mean()) if len(nov) else 0.0


def novelty_message(fraction: float) -> str:
    """The sentence a high novel fraction is reported with (CLI and viewer)."""
    return f"{100 * fraction:.0f} % of this tissue is unlike anything the model was trained on"
