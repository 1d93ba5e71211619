"""Expression scales: per spot (ours) and per gene (the reference code's evaluation and bank values).

The reference code normalises its training inputs per spot (``log10_1e4``: each spot's counts over the
panel ÷ their sum × 10⁴, then log10(1 + x)), but the matrix it retrieves from and scores against was
normalised while laid out genes × spots (``hvg_her2st.py``: ``scprep.normalize.library_size_normalize``
on the ``(genes, spots)`` matrix): **each gene across the spots of its section**,
``log10(1 + 10⁴ · c[spot, gene] / Σ_spots c[·, gene])``.  The published ACG/HEG/MSE/MAE are on that
scale; :data:`PER_GENE` reproduces it (the ``paper`` protocol), :data:`PER_SPOT` stays ours.

A model's *value normalisation* (``TrainConfig.value_normalization``) is the scale of its bank's
expression values, hence of its predictions and of the measured values they are scored against;
``None`` means the training inputs' scale (``TrainConfig.normalization``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Per spot (ours and the reference's training inputs).
PER_SPOT = "log10_1e4"
#: Per gene across the spots of its section (the reference's ground truth and bank values).
PER_GENE = "log10_1e4_per_gene"
#: The reference's ``library_size_normalize`` rescale (scprep's default).
RESCALE = 1e4

_DESCRIPTIONS = {
    PER_SPOT: "per spot: counts / spot total over the panel x 1e4, log10(1 + x) (ours)",
    PER_GENE: "per gene: counts / gene total over the section's spots x 1e4, log10(1 + x) "
    "(the reference code's ground truth and bank values; the published numbers' scale)",
    "ln_cpm": "per spot: ln(1 + counts per million)",
    "none": "values as stored (no normalisation)",
}


def per_gene_log10(dense: np.ndarray, rescale: float = RESCALE) -> np.ndarray:
    """The reference's genes × spots normalisation of one section's (spots, genes) counts.

    Parameters
    ----------
    dense
        float (N spots, G genes) counts of **one** section.
    rescale
        Multiplier after dividing by each gene's total (10⁴, scprep's default).

    Returns
    -------
    numpy.ndarray
        float64 (N, G): ``log10(1 + rescale · c / Σ_spots c)``; genes with no counts stay 0.
    """
    totals = dense.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(totals > 0, dense / np.where(totals > 0, totals, 1.0), 0.0) * rescale
    return np.log10(1.0 + rel)


def section_groups(adata: Any) -> list[np.ndarray]:
    """Row indices of each section of a sample (``obs['section']``; one group when absent)."""
    n = int(adata.n_obs)
    if "section" not in adata.obs or n == 0:
        return [np.arange(n)]
    _, codes = np.unique(adata.obs["section"].astype(str).to_numpy(), return_inverse=True)
    return [np.flatnonzero(codes == c) for c in range(int(codes.max()) + 1)]


def value_normalization(config: Any) -> str:
    """Scale of a model's bank values and predictions (``TrainConfig`` or its dict)."""
    get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
    return str(get("value_normalization", None) or get("normalization", PER_SPOT))


def describe_scale(method: str | None) -> str:
    """One line saying what a normalisation name means (for tables, JSON and logs)."""
    return _DESCRIPTIONS.get(str(method), str(method))
