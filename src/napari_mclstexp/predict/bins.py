"""Prediction at every bin of a Visium HD section, in chunks: memory bounded by the chunk, not the section.

Each chunk of bins goes through :func:`~napari_mclstexp.predict.spots.predict_at_spots` (patches of the
bundle's µm size centred on the bins, embeddings, chunked retrieval); the pieces are assembled into one
prediction AnnData with the bins' grid and ``uns['bin_grid']`` kept, so it can be drawn as a raster.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np

from ..progress import CancelToken, Progress, ProgressGen

#: Bins per chunk: patch memory ≈ chunk × input_px² × 3 bytes (224 px: 3 GB at 20,000).
DEFAULT_CHUNK = 20_000


def predict_at_bins(bundle: Any, adata: Any, *, chunk: int = DEFAULT_CHUNK, device: str = "auto",
                    cancel: CancelToken | None = None, **options: Any) -> ProgressGen[Any]:
    """Predict expression at every bin of ``adata``, ``chunk`` bins at a time.

    Parameters
    ----------
    bundle
        A loaded :class:`~napari_mclstexp.bundle.Bundle`.
    adata
        Binned sample with its image (never modified).
    chunk
        Bins per chunk.
    device, options
        As :func:`~napari_mclstexp.predict.spots.predict_at_spots` (``k``, ``distance``,
        ``batch_size``, ``precision``, ``tta``, ``patch_cache``).

    Yields
    ------
    Progress
        Stage ``"bins"``: bins done / total (metrics ``bins_per_s``, ``eta_s``).

    Returns
    -------
    anndata.AnnData
        As :func:`predict_at_spots` for all bins, in input order, plus ``uns['bin_grid']``.
    """
    import anndata as ad

    from .spots import predict_at_spots

    n = int(adata.n_obs)
    chunk = max(1, int(chunk))
    parts, t0 = [], time.perf_counter()
    yield Progress("bins", 0, n, message=f"{n} bins in chunks of {chunk}")
    for start in range(0, n, chunk):
        piece = adata[start : start + chunk]
        gen = predict_at_spots(bundle, piece, device=device, cancel=cancel, **options)
        try:
            while True:
                next(gen)  # inner stages: the chunk's own bars would flood the CLI
        except StopIteration as stop:
            parts.append(stop.value)
        done = min(start + chunk, n)
        rate = done / max(time.perf_counter() - t0, 1e-9)
        yield Progress("bins", done, n, message="bins predicted",
                       metrics={"bins_per_s": rate, "eta_s": (n - done) / max(rate, 1e-9)})
    pred = parts[0] if len(parts) == 1 else ad.concat(parts, merge="first", uns_merge="first")
    pred.uns = copy.deepcopy(parts[0].uns)
    if "bin_grid" in adata.uns:
        pred.uns["bin_grid"] = copy.deepcopy(dict(adata.uns["bin_grid"]))
    pred.uns.setdefault("mclstexp", {})["chunk"] = chunk
    assert np.array_equal(pred.obs_names, adata.obs_names)
    return pred
