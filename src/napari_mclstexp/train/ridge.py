"""``--head ridge``: fit the HEST recipe (PCA 256 + ridge) on cached frozen-encoder features (generator)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..data.features import FeatureCache
from ..errors import InputError
from ..progress import CancelToken, Progress, ProgressGen
from .result import TrainResult


def train_ridge(
    samples: Sequence[Any],
    config: Any,
    *,
    genes: Any = None,
    device: str | torch.device = "auto",
    cancel: CancelToken | None = None,
    patch_cache: Any = None,
    feature_cache: FeatureCache | None = None,
) -> ProgressGen[Any]:
    """Features once per spot (cached), then one closed-form fit; returns a ``TrainResult``.

    The result's model is a :class:`~napari_mclstexp.model.ridge.RidgeModel`; its config has
    ``head="ridge"``, ``freeze=True`` and ``embed_dim`` = number of genes (its outputs are the
    predictions).  ``history`` holds one entry with the fit's ``seconds`` and training ``r2``.

    Yields
    ------
    Progress
        ``"patches"`` / ``"features"`` events, then ``"fit"``.
    """
    from ..data.genes import expression_matrix, select_genes
    from ..data.slide_stain import training_normaliser
    from ..device import resolve_device
    from ..model.presets import as_config
    from ..model.ridge import RidgeModel, fit_ridge, prediction_r2
    from ..sample import section_name
    from .frozen import iter_features_of

    samples = list(samples)
    if not samples:
        raise InputError("no training samples given")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise InputError("the ridge head fits in one process (seconds); start it without torchrun")
    gene_list = list(select_genes(samples, genes))
    cfg = as_config(config).replace(head="ridge", freeze=True, embed_dim=len(gene_list))
    dev = resolve_device(device)
    cache = feature_cache if feature_cache is not None else FeatureCache()
    torch.manual_seed(cfg.seed)
    model = RidgeModel(cfg, len(gene_list)).to(dev).eval()
    for p in model.image_encoder.parameters():
        p.requires_grad_(False)
    feats = np.concatenate(
        (
            yield from iter_features_of(
                model,
                samples,
                dev,
                cache=cache,
                patch_cache=patch_cache,
                cancel=cancel,
                stain=training_normaliser(samples, cfg.stain_normalize),
            )
        )
    )
    expr = np.concatenate(
        [np.asarray(expression_matrix(a, gene_list, cfg.normalization), dtype=np.float32) for a in samples]
    )
    if cancel is not None:
        cancel.raise_if_cancelled()
    yield Progress("fit", 0, 1, message=f"PCA + ridge on {len(feats)} spots × {feats.shape[1]} features")
    t0 = time.perf_counter()
    weight, bias = fit_ridge(feats, expr, seed=cfg.seed)
    with torch.no_grad():
        model.linear.weight.copy_(torch.from_numpy(weight))
        model.linear.bias.copy_(torch.from_numpy(bias))
    seconds = time.perf_counter() - t0
    r2 = prediction_r2(feats @ weight.T + bias, expr)
    yield Progress("fit", 1, 1, metrics={"r2": r2, "seconds": seconds})
    sections = [section_name(a, i) for i, a in enumerate(samples)]
    history = [{"epoch": 1, "loss": float("nan"), "r2": r2, "seconds": seconds}]
    return TrainResult(model, cfg, gene_list, sections, history, (1, 1), str(dev), True, "eager", False)
