"""Predict at the spots of a section and, when it was measured, score the prediction against it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..analysis.metrics import evaluate
from ..errors import MclstexpError
from ..predict.spots import predict_at_spots
from ..progress import CancelToken, ProgressGen

if TYPE_CHECKING:
    from anndata import AnnData

    from ..bundle import Bundle


def predict_and_score(
    bundle: Bundle,
    adata: AnnData,
    *,
    device: str | torch.device = "auto",
    cancel: CancelToken | None = None,
    smooth: bool = True,
    stain: str = "auto",
) -> ProgressGen[AnnData]:
    """Generator: :func:`~napari_mclstexp.predict.spots.predict_at_spots`, then, when the sample has
    measured counts of the predicted genes, the paper's metrics against them (ACG, HEG@50, …) in
    ``pred.uns['mclstexp']['vs_measured']`` (:func:`~napari_mclstexp.analysis.metrics.evaluate`'s
    numbers; NaN kept, so the predictions still write to ``.h5ad``).  ``smooth``: neighbour smoothing at spots
    (:mod:`~napari_mclstexp.predict.smoothing`; bins are never smoothed); ``stain``: ``auto``, ``none`` or a
    reference file (:mod:`~napari_mclstexp.predict.stain_choice`)."""
    if "bin_grid" in adata.uns:  # Visium HD: every bin, block reads, bounded memory
        from ..predict.bins import predict_at_bins

        pred = yield from predict_at_bins(bundle, adata, device=device, cancel=cancel, stain=stain)
    else:
        pred = yield from predict_at_spots(bundle, adata, device=device, cancel=cancel, smooth=smooth, stain=stain)
    if adata.n_vars and set(map(str, pred.var_names)) & set(map(str, adata.var_names)):
        try:
            scores = {k: v for k, v in evaluate(pred, adata).items() if k != "per_gene"}
            pred.uns.setdefault("mclstexp", {})["vs_measured"] = scores
        except MclstexpError:  # nothing comparable (e.g. spots not matched): predictions stand alone
            pass
    return pred
