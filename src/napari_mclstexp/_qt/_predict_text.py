"""What the Predict widget says: scores against the measured spots, the gene shown, a model that
predicts none of the measured genes."""

from __future__ import annotations

import numpy as np


def score_text(scores: dict) -> str:
    """``ACG 0.412 · HEG@50 0.603 · MSE 0.31 (785 genes)``; undefined numbers read ``n/a``."""

    def num(key: str, fmt: str) -> str:
        value = scores.get(key)
        return format(value, fmt) if isinstance(value, int | float) and np.isfinite(value) else "n/a"

    return (
        f"ACG {num('acg', '.3f')} · HEG@50 {num('heg50', '.3f')} · MSE {num('mse', '.3g')}"
        f" ({scores.get('n_genes', '?')} genes)"
    )


def showing(gene: str | None) -> str:
    """The end of the status line that names the gene on the canvas."""
    return f"; showing {gene}, the most reliable gene (others: Explore)" if gene else ""


def other_genes_warning(pred, measured, source: str, model: str) -> str | None:
    """The warning when the model (``model``: its path) predicts none of the genes ``measured`` at the
    spots of layer ``source`` (a wrong model?), else ``None``."""
    genes = list(map(str, pred.var_names))
    if measured is None or not measured.n_vars or set(genes) & set(map(str, measured.var_names)):
        return None
    return (
        f"the model predicts none of the genes measured in {source} ({len(genes)} genes: "
        f"{', '.join(genes[:3])}, …): it was trained on other genes, so measured and predicted cannot be "
        f"compared (model: {model})"
    )


def section_of(adata) -> str | None:
    """A sample's section name (``obs['section']``, else its library id)."""
    from ..sample import library_id

    if adata is None:
        return None
    if "section" in adata.obs and adata.n_obs:
        return str(adata.obs["section"].iloc[0])
    try:
        return str(library_id(adata))
    except Exception:  # noqa: BLE001 - a sample without a library: no name to compare
        return None


def training_note(bundle_meta: dict, adata) -> str:
    """``; SYN1 was in training: not a test score`` when the scored section trained the model (and the
    same for its patient once bundles record patients), else ``""``."""
    section = section_of(adata)
    if section is None:
        return ""
    if section in set(map(str, bundle_meta.get("train_sections") or [])):
        return f"; ⚠ {section} was in training: not a test score"
    patient = str(adata.obs["patient"].iloc[0]) if "patient" in adata.obs and adata.n_obs else None
    if patient and patient in set(map(str, bundle_meta.get("train_patients") or [])):
        return f"; ⚠ same patient as a training section ({patient}): optimistic score"
    return ""
