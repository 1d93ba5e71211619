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
    embeddings: np.ndarray, group: np.ndarray, *, direct: bool, groups: str, seed: int = 0
) -> tuple[np.ndarray, dict[str, Any]]:
    """``(reference, calibration)`` from the training spots' image embeddings (ridge: head outputs).

    A seeded sample of at most :data:`REFERENCE_MAX` spots becomes the reference (float32: the cosines of one
    model's embeddings differ in the 4th decimal, below float16's precision); every training
    spot is scored against the reference spots of the other groups, and the held-out typicalities are
    calibrated (:func:`calibrate`).  ``direct`` (ridge outputs): cosines after centring on the reference mean.
    """
    emb = np.asarray(embeddings, np.float32)
    keep = np.sort(np.random.default_rng(seed).permutation(len(emb))[:REFERENCE_MAX])
    ref = emb[keep]
    centre = ref.mean(0) if direct else None
    held = held_out_typicality(emb, group, ref, np.asarray(group)[keep], DEFAULT_K, centre=centre)
    space = "head outputs, centred" if direct else "image embeddings"
    return ref, calibrate(held, k=DEFAULT_K, space=space, groups=groups)


def reference(bundle: Bundle) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(keys, centre)`` novelty is measured against: the stored reference sample (``None`` if absent)."""
    from .heads import is_direct

    ref = getattr(bundle, "novelty_reference", None)
    if ref is None or not len(ref):
        return None, None
    ref = np.asarray(ref, np.float32)
    return ref, (ref.mean(0) if is_direct(bundle) else None)


def score(bundle: Bundle, embedding: Any) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """Novelty of prediction embeddings under ``bundle``'s calibration.

    Returns
    -------
    novelty, summary
        ``(N,)`` float32 and ``{"novel_fraction", "level", "threshold", "n", "method"}``; ``(None, None)``
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
    fraction = float((nov > level).mean()) if len(nov) else 0.0
    return nov, {"novel_fraction": fraction, "level": level, "n": int(len(nov)), "method": cal.get("method", METHOD)}


def novelty_message(fraction: float) -> str:
    """The sentence a high novel fraction is reported with (CLI and viewer)."""
    return f"{100 * fraction:.0f} % of this tissue is unlike anything the model was trained on"
