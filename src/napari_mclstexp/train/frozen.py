"""Frozen-feature training: image features once per patch (cached), then only the heads and spot side learn.

With a frozen image encoder a training step no longer runs it: each spot's encoder features are
computed once (:mod:`.features`, stored in the :class:`~napari_mclstexp.data.features.FeatureCache`)
and every epoch trains the image projection head, the spot Transformer, its head and the temperature
on those features.  Image augmentation is therefore off (as in HEST's frozen-encoder protocol).  The
returned model still holds the encoder, so prediction embeds new patches exactly as the features were
computed (encoder in eval mode → projection head).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.features import FeatureCache
from ..data.slide_stain import training_normaliser
from ..errors import InputError
from ..progress import CancelToken, Progress, ProgressGen
from .features import freeze_encoder, iter_sample_features
from .result import TrainResult, make_optimizer, make_scheduler

log = logging.getLogger(__name__)


def embed_features(model: Any, feats: torch.Tensor) -> torch.Tensor:
    """(N, F) encoder features → (N, D) image embeddings (projection head, L2 per config)."""
    emb = model.image_head(feats)
    return F.normalize(emb.float(), dim=-1) if model.config.l2_normalize else emb


def iter_features_of(
    model: Any,
    samples: Sequence[Any],
    device: torch.device,
    *,
    cache: FeatureCache | None,
    patch_cache: Any = None,
    sizes: Sequence[int | None] | None = None,
    cancel: CancelToken | None = None,
    stain: Any = None,
) -> ProgressGen[list[np.ndarray]]:
    """Features of every sample's spots (one float32 (N_i, F) array per sample), through ``cache``;
    ``sizes`` overrides a sample's crop edge (px; ``None``: the training crop); ``stain``: a
    :class:`~napari_mclstexp.data.slide_stain.StainNormaliser` for the patches."""
    from ..sample import section_name

    out = []
    for i, adata in enumerate(samples):
        if cancel is not None:
            cancel.raise_if_cancelled()
        label = f"section {section_name(adata, i)} ({i + 1} of {len(samples)})"
        size = sizes[i] if sizes is not None else None
        out.append(
            (
                yield from iter_sample_features(
                    model,
                    adata,
                    device,
                    cache=cache,
                    patch_cache=patch_cache,
                    cancel=cancel,
                    label=label,
                    size_px=size,
                    stain=stain,
                )
            )
        )
    return out


def train_frozen(
    samples: Sequence[Any],
    config: Any,
    *,
    genes: Any = None,
    device: str | torch.device = "auto",
    cancel: CancelToken | None = None,
    patch_cache: Any = None,
    feature_cache: FeatureCache | None = None,
) -> ProgressGen[Any]:
    """Train mclSTExp on cached features of a frozen image encoder (generator).

    Parameters are those of :func:`~napari_mclstexp.train.trainer.train`; ``feature_cache`` defaults to
    a :class:`FeatureCache` at its default folder.

    Yields
    ------
    Progress
        ``"patches"`` / ``"features"`` events (none computed on a cache hit), then one ``"train"`` event
        per step with ``epoch``, ``step``, ``loss``, ``spots_per_s``, ``eta_s``.

    Returns
    -------
    TrainResult
    """
    from ..data.genes import expression_matrix, select_genes
    from ..device import resolve_device
    from ..model.mclstexp import build_model, pos_shape_for, spot_positions
    from ..model.presets import as_config
    from ..sample import section_name

    cfg = as_config(config)
    samples = list(samples)
    if not samples:
        raise InputError("no training samples given")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # every rank would train (and save) the same model
        raise InputError("frozen-feature training runs in one process (minutes); start it without torchrun")
    dev = resolve_device(device)
    cache = feature_cache if feature_cache is not None else FeatureCache()
    gene_list = list(select_genes(samples, genes))
    pos_shape = pos_shape_for(samples, cfg)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, len(gene_list), pos_shape).to(dev)
    freeze_encoder(model, 0)
    stain = training_normaliser(samples, cfg.stain_normalize)
    feats = yield from iter_features_of(
        model, samples, dev, cache=cache, patch_cache=patch_cache, cancel=cancel, stain=stain
    )
    feat_t = torch.from_numpy(np.concatenate(feats)).to(dev)
    expr_t = torch.from_numpy(
        np.concatenate(
            [np.asarray(expression_matrix(a, gene_list, cfg.normalization), dtype=np.float32) for a in samples]
        )
    ).to(dev)
    pos_t = torch.from_numpy(np.concatenate([spot_positions(a, cfg) for a in samples])).to(dev)
    n = len(expr_t)
    batch = max(1, min(int(cfg.batch_size), n))
    steps_per_epoch = max(1, n // batch)
    total_steps = steps_per_epoch * cfg.epochs
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(_Params(trainable), cfg, dev)
    sched = make_scheduler(opt, cfg, total_steps)
    np_rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed + 1)
    history: list[dict[str, float]] = []
    t_start, done, loss_v = time.perf_counter(), 0, float("nan")
    for epoch in range(cfg.epochs):
        model.train()
        model.image_encoder.eval()  # frozen: never runs here, and predicts in eval mode
        order = torch.from_numpy(np_rng.permutation(n)).to(dev)
        t_epoch, loss_sum = time.perf_counter(), 0.0
        for s in range(steps_per_epoch):
            if cancel is not None:
                cancel.raise_if_cancelled()
            idx = order[s * batch : (s + 1) * batch]
            loss = model.loss(embed_features(model, feat_t[idx]), model.encode_spots(expr_t[idx], pos_t[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_v = float(loss.detach())
            loss_sum += loss_v
            done += 1
            elapsed = time.perf_counter() - t_start
            step = epoch * steps_per_epoch + s + 1
            yield Progress(
                "train",
                step,
                total_steps,
                message=f"epoch {epoch + 1}/{cfg.epochs}",
                metrics={
                    "epoch": epoch + 1,
                    "step": step,
                    "loss": loss_v,
                    "spots_per_s": done * batch / max(elapsed, 1e-9),
                    "eta_s": elapsed / done * (total_steps - step),
                },
            )
        seconds = time.perf_counter() - t_epoch
        history.append(
            {
                "epoch": epoch + 1,
                "loss": loss_sum / steps_per_epoch,
                "seconds": seconds,
                "spots_per_s": steps_per_epoch * batch / max(seconds, 1e-9),
                "lr": float(opt.param_groups[0]["lr"]),
                "temperature": float(model.temperature.detach()),
            }
        )
    model.eval()
    log.info("frozen-feature training: %d feature cache hits, %d misses", cache.hits, cache.misses)
    sections = [section_name(a, i) for i, a in enumerate(samples)]
    return TrainResult(model, cfg, gene_list, sections, history, pos_shape, str(dev), True, "eager", False)


class _Params(torch.nn.Module):
    """Adapter so the trainer's optimizer factory (which calls ``.parameters()``) sees only trainable tensors."""

    def __init__(self, params: list[torch.nn.Parameter]) -> None:
        super().__init__()
        self._list = params

    def parameters(self, recurse: bool = True):  # noqa: ARG002 - same signature as nn.Module
        return iter(self._list)
