"""Spots coloured by a reference label column (``obs['annotation']``, ``obs['cluster_ref']``, demo
regions…) with the same colours as domains and exports (:func:`..io.export.domain_colors`), and the
legend entries that go with them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..io.export import domain_colors

#: ``obs`` columns that are bookkeeping, not labels a person would colour by.
NOT_LABELS = ("section", "patient", "uncertainty", "domain", "demo_split", "barcode")


def label_columns(adata) -> list[str]:
    """Categorical or text ``obs`` columns of ``adata`` with 2–50 distinct values (reference labels)."""
    if adata is None:
        return []
    out = []
    for name in adata.obs.columns:
        col = adata.obs[name]
        if name in NOT_LABELS or not (isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object):
            continue
        if 2 <= col.nunique(dropna=True) <= 50:
            out.append(str(name))
    return out


def paint_labels(layer, adata, column: str) -> tuple[list[str], np.ndarray, list[int]]:
    """Colour the Points ``layer`` (spots of ``adata``) by ``obs[column]``.

    Returns
    -------
    names, colors, counts
        Legend entries: label names (sorted), ``(n, 3)`` uint8 RGB, spots per label.
    """
    labels = adata.obs[column].astype(str).to_numpy()
    colours = domain_colors(labels)
    names = sorted(colours, key=str)
    rgb = np.array([colours[v] for v in labels], np.float32) / 255.0
    features = layer.features
    features[column] = pd.Categorical(labels, categories=names)
    with layer.events.face_color.blocker():
        layer.face_color = np.concatenate([rgb, np.ones((len(rgb), 1), np.float32)], axis=1)
    layer.refresh()
    counts = [int((labels == n).sum()) for n in names]
    return [str(n) for n in names], np.array([colours[n] for n in names], np.uint8), counts
