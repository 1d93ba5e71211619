"""npe2 writers: a predictions/spots Points layer → ``.h5ad``, ``.csv``, or QuPath ``.geojson``.

The layer's AnnData (``metadata["mclstexp"]["adata"]``) is written; domain labels shown on the layer
(``features["domain"]``) are added to a copy.  Points layers from elsewhere are written from their
coordinates and numeric ``features`` columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .coords import rowcol_to_xy


def layer_to_adata(data: Any, meta: dict):
    """The AnnData to write for a Points layer's ``(data, meta)`` (a copy when domains are added)."""
    import anndata as ad

    stored = (meta.get("metadata") or {}).get("mclstexp", {}).get("adata")
    features = meta.get("features")
    features = pd.DataFrame(features) if features is not None else pd.DataFrame(index=range(len(data)))
    if stored is not None:
        if "domain" in features and len(features) == stored.n_obs:
            stored = stored.copy()
            stored.obs["domain"] = pd.Categorical(features["domain"].to_numpy())
        return stored
    scale = np.asarray(meta.get("scale", (1.0, 1.0)), dtype=float)[-2:]
    numeric = features.select_dtypes("number")
    adata = ad.AnnData(
        X=numeric.to_numpy(dtype=np.float32),
        obs=pd.DataFrame(index=[f"spot{i}" for i in range(len(data))]),
        var=pd.DataFrame(index=[str(c) for c in numeric.columns]),
    )
    adata.obsm["spatial"] = rowcol_to_xy(np.asarray(data, dtype=float)[:, -2:])
    if "domain" in features:
        adata.obs["domain"] = pd.Categorical(features["domain"].to_numpy())
    adata.uns["napari_scale"] = scale
    return adata


def write_h5ad(path: str, data: Any, meta: dict) -> list[str]:
    """Write the layer's predictions (or sample) as ``.h5ad`` (atomic)."""
    from .io.h5ad import write_h5ad as write

    write(layer_to_adata(data, meta), path)
    return [path]


def write_csv(path: str, data: Any, meta: dict) -> list[str]:
    """Write one row per spot (x, y, uncertainty, domain, genes) as CSV (atomic)."""
    from .io.export import predictions_to_csv

    adata = layer_to_adata(data, meta)
    predictions_to_csv(adata, path, domains="domain" if "domain" in adata.obs else None)
    return [path]


def write_geojson(path: str, data: Any, meta: dict) -> list[str]:
    """Write spots as QuPath detections (measurements; domains as classifications)."""
    from .io.export import spots_to_geojson

    adata = layer_to_adata(data, meta)
    size = np.asarray(meta.get("size", 0.0), dtype=float)
    diameter = float(np.median(size)) if size.size else None
    from .sample import spot_diameter_px

    diameter = spot_diameter_px(adata) or diameter or None
    spots_to_geojson(adata, path, domains="domain" if "domain" in adata.obs else None, spot_diameter_px=diameter)
    return [path]
