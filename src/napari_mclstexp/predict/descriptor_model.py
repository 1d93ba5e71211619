"""Expression from tissue descriptors (:mod:`napari_mclstexp.data.descriptors`), blended with the retrieval.

A second predictor beside the image-embedding retrieval: extremely randomised trees (scikit-learn's
``ExtraTreesRegressor``: :data:`N_TREES` trees, leaves of at least :data:`MIN_LEAF` spots, 30 % of the
descriptors tried per split) from the descriptors of the bank's image spots to the first :data:`N_COMPONENTS`
principal components of their expression, mapped back to genes.  Trees learn which descriptors matter for
expression, which a plain nearest-neighbour search in descriptor space cannot.

The bundle stores the bank spots' descriptors (``bank.safetensors`` ``"descriptors"``), their definition's
version (``metadata['descriptors']['version']``: predictions describe new tissue the same way) and the
weight of this predictor in the blend, chosen on held-out predictions of the training sections
(:func:`napari_mclstexp.workflows.reliability.iter_gene_reliability`; ``metadata['descriptors']``).  The
trees are not stored (nothing in a bundle is pickled): they are fitted again, deterministically (fixed seed),
the first time a loaded bundle predicts — about a second for a thousand spots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..bundle import Bundle

N_TREES = 300
MIN_LEAF = 10
MAX_FEATURES = 0.3
N_COMPONENTS = 30
SEED = 0
#: The blend weights of the descriptor predictions tried at training time (0: retrieval only).
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: ``metadata['descriptors']['method']``.
METHOD = "held-out predictions of the training sections (leave one section out, or halves of one section)"


@dataclass
class DescriptorModel:
    """Fitted trees on the principal components of the expression."""

    mean: np.ndarray  #: (G,) expression mean
    components: np.ndarray  #: (C, G) principal axes
    trees: Any  #: sklearn ExtraTreesRegressor on (N, D) descriptors → (N, C) scores

    def predict(self, descriptors: np.ndarray) -> np.ndarray:
        """``(N, D)`` descriptors → float32 ``(N, G)`` expression."""
        descriptors = np.ascontiguousarray(descriptors, np.float32)
        if not len(descriptors):
            return np.zeros((0, len(self.mean)), np.float32)
        return (self.scores(descriptors) @ self.components + self.mean).astype(np.float32)

    def scores(self, descriptors: np.ndarray) -> np.ndarray:
        """``(N, C)`` float64 component scores: the trees' mean, as ``trees.predict`` sums it (same order),
        without its per-tree input checks and dispatch (a third of a millisecond per tile in 64-tile batches)."""
        estimators = getattr(self.trees, "estimators_", None)
        if not estimators:
            return np.asarray(self.trees.predict(descriptors)).reshape(len(descriptors), -1)
        out = np.zeros((len(descriptors), int(self.trees.n_outputs_)))
        for tree in estimators:
            out += tree.tree_.predict(descriptors)[:, :, 0]
        out /= len(estimators)
        return out


def fit_descriptor_model(descriptors: np.ndarray, expression: np.ndarray, seed: int = SEED) -> DescriptorModel:
    """Fit the trees on ``(N, D)`` descriptors and ``(N, G)`` expression (``N`` ≥ 2 spots)."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import ExtraTreesRegressor

    x = np.asarray(descriptors, np.float32)
    y = np.asarray(expression, np.float32)
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"need matching descriptors and expression of ≥ 2 spots, got {len(x)} and {len(y)}")
    pca = PCA(min(N_COMPONENTS, len(y) - 1, y.shape[1]), random_state=seed).fit(y)
    trees = ExtraTreesRegressor(
        n_estimators=N_TREES, min_samples_leaf=MIN_LEAF, max_features=MAX_FEATURES, random_state=seed, n_jobs=1
    ).fit(x, pca.transform(y))
    return DescriptorModel(pca.mean_.astype(np.float32), pca.components_.astype(np.float32), trees)


def descriptor_weight(bundle: Bundle, on: bool | float = True) -> float:
    """The descriptor predictions' blend weight: the bundle's chosen one, ``0`` when off or absent, or a float."""
    if on is False or on is None or getattr(bundle, "descriptors", None) is None:
        return 0.0
    if on is not True:
        return float(on)
    info = (getattr(bundle, "metadata", None) or {}).get("descriptors") or {}
    return float(info.get("weight", 0.0) or 0.0)


def bundle_descriptor_model(bundle: Bundle) -> DescriptorModel:
    """The trees of a bundle with descriptors, fitted once per bundle object (kept on it)."""
    cached = bundle.__dict__.get("_descriptor_model")
    if cached is None:
        x = np.asarray(bundle.descriptors, np.float32)
        cached = fit_descriptor_model(x, np.asarray(bundle.bank.expression[: len(x)], np.float32))
        bundle.__dict__["_descriptor_model"] = cached
    return cached


def blend(retrieved: np.ndarray, from_descriptors: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) · retrieved + weight · from_descriptors`` (float32)."""
    w = float(weight)
    return ((1.0 - w) * np.asarray(retrieved, np.float32) + w * np.asarray(from_descriptors, np.float32)).astype(
        np.float32
    )


def choose_weight(
    retrieved: np.ndarray,
    from_descriptors: np.ndarray,
    truth: np.ndarray,
    xy: np.ndarray,
    sections: np.ndarray,
    weights: tuple[float, ...] = WEIGHTS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The blend weight and then the neighbour-smoothing weight with the best held-out mean per-gene r.

    Parameters
    ----------
    retrieved, from_descriptors
        ``(N, G)`` held-out predictions of the training spots by each predictor.
    truth
        ``(N, G)`` their measured expression (the bank's scale).
    xy, sections
        Spot centres and section names (smoothing stays within a section).

    Returns
    -------
    tuple of dict
        ``({"weight", "scores", "method"}, smoothing)``: ``smoothing`` as
        :func:`~napari_mclstexp.predict.smoothing.choose_alpha` for the chosen blend.
    """
    from .smoothing import choose_alpha

    results = {}
    for w in weights:
        sm = choose_alpha(blend(retrieved, from_descriptors, w), truth, xy, sections)
        results[float(w)] = (max(v for v in sm["scores"].values()), sm)
    finite = {w: r for w, r in results.items() if np.isfinite(r[0])}
    best = max(finite, key=lambda w: finite[w][0]) if finite else 0.0
    info = {"weight": best, "scores": {str(w): r[0] for w, r in results.items()}, "method": METHOD}
    return info, results[best][1] if best in results else {"alpha": 0.0}


def descriptor_version(bundle: Bundle) -> int:
    """The definition of a bundle's stored descriptors (``metadata['descriptors']['version']``; absent: 1,
    bundles made before the key, whose descriptors are :mod:`~napari_mclstexp.data.descriptors_v1`'s)."""
    info = (getattr(bundle, "metadata", None) or {}).get("descriptors") or {}
    return int(info.get("version", 1))


def read_scale(bundle: Bundle, weight: float) -> int:
    """The context scale tile reads need: the model's, widened to the descriptors' view when version-1
    descriptors blend in (version 2 describes the tiles from their block's read, :mod:`.tiles`)."""
    from ..data.descriptors_v1 import CONTEXT

    scale = int(bundle.config.get("context_scale", 1))
    return max(scale, CONTEXT) if weight > 0 and descriptor_version(bundle) == 1 else scale


def describe_px(bundle: Bundle, weight: float, patch_px: int) -> int:
    """The spot patch edge (full-res px) tile readers describe the tissue at, or 0 (off, or version 1)."""
    return int(patch_px) if weight > 0 and descriptor_version(bundle) != 1 else 0


def centre(batch: Any, edge: int) -> Any:
    """The central ``edge`` × ``edge`` square of ``(B, E, E, 3)`` reads (the reads themselves if ``E == edge``)."""
    lo = (batch.shape[1] - int(edge)) // 2
    return batch if lo <= 0 else batch[:, lo : lo + int(edge), lo : lo + int(edge)]


def predict_tiles(bundle: Bundle, reads: Any, descriptors: np.ndarray | None) -> np.ndarray:
    """Descriptor predictions ``(B, G)`` of a batch of tiles: from the descriptors the readers made, or
    (version 1) from the tiles' reads at :func:`read_scale` (uint8 tensor or array)."""
    return bundle_descriptor_model(bundle).predict(tile_descriptors(bundle, reads, descriptors))


def tile_descriptors(bundle: Bundle, reads: Any, descriptors: np.ndarray | None) -> np.ndarray:
    """``(B, D)`` descriptors of a batch of tiles: the readers' (``descriptors``), or (version 1) computed
    from the tiles' reads at :func:`read_scale`."""
    if descriptors is not None:
        return np.asarray(descriptors, np.float32)
    from ..data.descriptors_v1 import CONTEXT, tissue_descriptors

    view = centre(reads, CONTEXT * int(bundle.config["input_px"]))
    view = view.numpy() if hasattr(view, "numpy") else np.asarray(view)
    return tissue_descriptors(np.ascontiguousarray(view))
