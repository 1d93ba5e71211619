"""Per-gene reliability of a bundle: how well each gene is predicted on spots its bank has not seen.

Computed by :func:`napari_mclstexp.workflows.reliability.iter_gene_reliability`; read here.  At training
time (after the bank is built) each training section is predicted from a bank *without* that section
(leave-one-section-out retrieval; one section alone is split into left and right halves), and each
gene's Pearson r between predicted and measured normalised expression over all held-out spots,
each section's mean removed from both (the section-to-section level of a gene is not read from its
image), is its reliability.  The image encoder did see those spots during training, so the figures are an
optimistic bound: a gene with a low r here is not worth reading on new slides.

Stored in ``bundle.metadata['reliability']`` and copied by predictions into
``uns['mclstexp']['reliability']``: ``{"genes": [...], "r": [...], "threshold", "method", "n_spots"}``
(lists, so ``.h5ad`` files keep them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Genes whose held-out r is below this are marked unreliable in the viewer and in exports.
RELIABLE_R = 0.3
METHOD = "leave-one-section-out retrieval"


def reliability_map(info: dict | None) -> dict[str, float]:
    """``{gene: r}`` from a stored reliability record (missing or undefined r → NaN); ``{}`` for none."""
    if not isinstance(info, dict) or "genes" not in info:
        return {}
    return {
        str(g): (float(r) if r is not None else float("nan")) for g, r in zip(info["genes"], info["r"], strict=True)
    }


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
