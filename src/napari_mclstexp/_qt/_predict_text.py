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
        f"{model}: none of its {len(genes)} genes ({', '.join(genes[:3])}, …) is measured in "
        f"{source}: it was trained on other genes, so measured and predicted cannot be compared"
    )
