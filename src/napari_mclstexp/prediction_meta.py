"""What a prediction's ``uns['mclstexp']`` holds, read in one place.

``predict_at_spots`` and ``predict_whole_slide`` record their provenance there (see
:func:`napari_mclstexp.predict.spots.provenance`): ``bundle`` (which model), ``k``, ``distance``,
``normalization``, ``mode`` (``"spots"`` or ``"whole_slide"``), and for whole slides the tile ``grid``
(``step_px``, ``origin_xy``, ``shape``, ``patch_px``).  Readers, the CLI and the widgets ask these
functions instead of reading the keys themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from anndata import AnnData

KEY = "mclstexp"


def info(adata: AnnData) -> dict[str, Any]:
    """``uns['mclstexp']`` (an empty dict when absent or not a mapping)."""
    value = getattr(adata, "uns", {}).get(KEY)
    return value if isinstance(value, dict) else {}


def is_prediction(adata: AnnData) -> bool:
    """Whether ``adata`` holds predictions (it names the bundle that made them)."""
    return "bundle" in info(adata)


def is_whole_slide(adata: AnnData) -> bool:
    """Whether ``adata`` holds whole-slide tile predictions (a tile grid rather than spots)."""
    meta = info(adata)
    return meta.get("mode") == "whole_slide" or "grid" in meta


def grid(adata: AnnData) -> dict[str, Any] | None:
    """The tile grid of a whole-slide prediction, or ``None``."""
    value = info(adata).get("grid")
    return value if isinstance(value, dict) else None


def normalization(adata: AnnData) -> str | None:
    """The expression normalisation the prediction is on (its model's), or ``None`` when not recorded."""
    meta = info(adata)
    bundle = meta.get("bundle", {}) if isinstance(meta.get("bundle"), dict) else {}
    holders = (meta, meta.get("config", {}), bundle, meta.get("metadata", {}), bundle.get("config", {}))
    for holder in holders:
        if isinstance(holder, dict) and isinstance(holder.get("normalization"), str):
            return holder["normalization"]
    return None


def gene_values(adata: AnnData, gene: str | None = None) -> np.ndarray:
    """One gene's values (default: the first of the panel) as a float32 vector."""
    j = 0 if gene is None else adata.var_names.get_loc(gene)
    col = adata.X[:, j]
    col = col.toarray() if sparse.issparse(col) else np.asarray(col)
    return col.ravel().astype(np.float32, copy=False)
