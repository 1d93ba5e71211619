"""Frozen image-encoder features of a sample's spots: computed once (batched), then read from the cache.

Used by frozen-feature training (:mod:`.frozen`), the ridge head (:mod:`..model.ridge`) and the CV
baselines.  Patches are cut at the config's µm size when the sample's µm/px is known (``patch_um``;
foundation models set it to their input size × training µm/px) and resampled to ``input_px``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from ..data.features import FeatureCache, feature_key
from ..data.patches import crop_px, iter_sample_patches
from ..model.frozen import encoder_features, freeze_encoder, preprocessing_of
from ..progress import CancelToken, Progress, ProgressGen
from ..sample import image_path, microns_per_pixel, spot_xy

__all__ = [
    "encoder_features",
    "freeze_encoder",
    "iter_compute_features",
    "iter_sample_features",
    "preprocessing_of",
    "sample_patch_px",
    "weights_id",
]

#: Patches per encoder forward pass when computing features.
FEATURE_BATCH = 32


def sample_patch_px(adata: Any, cfg: Any) -> int:
    """Crop edge (full-res px) for ``adata``: ``patch_um`` at its µm/px when both are known, else ``patch_px``."""
    return crop_px(cfg.patch_px, getattr(cfg, "patch_um", 0), microns_per_pixel(adata))


def weights_id(cfg: Any) -> str:
    """Identity of the encoder weights: ``sha256:<hex>`` of a local file, ``none:seed<S>`` when random."""
    from ..model.weights import weights_identity

    ident = weights_identity(cfg.weights)
    return f"none:seed{cfg.seed}" if ident == "none" else ident


def iter_compute_features(
    model: Any,
    patches: np.ndarray,
    device: torch.device,
    *,
    batch_size: int = FEATURE_BATCH,
    cancel: CancelToken | None = None,
    label: str = "",
) -> ProgressGen[np.ndarray]:
    """Encoder features of uint8 (N, H, W, 3) patches in batches (bf16 autocast on CUDA).

    Yields ``Progress("features")`` after every batch; checks ``cancel`` before each.

    Returns
    -------
    numpy.ndarray
        float32 (N, F).
    """
    was_training = model.image_encoder.training
    model.image_encoder.eval()
    n = len(patches)
    out = []
    try:
        for start in range(0, n, batch_size):
            if cancel is not None:
                cancel.raise_if_cancelled()
            batch = torch.from_numpy(np.array(patches[start : start + batch_size])).to(device)
            with torch.inference_mode(), _autocast(device, model.config.precision):
                out.append(encoder_features(model, model.to_input(batch)).cpu().numpy())
            yield Progress("features", min(start + batch_size, n), n, message=label or "image features")
    finally:
        model.image_encoder.train(was_training)
    if not out:
        width = int(model.image_head.projection.in_features)
        return np.zeros((0, width), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def iter_sample_features(
    model: Any,
    adata: Any,
    device: torch.device,
    *,
    cache: FeatureCache | None = None,
    patch_cache: Any = None,
    batch_size: int = FEATURE_BATCH,
    cancel: CancelToken | None = None,
    label: str = "",
    size_px: int | None = None,
    stain: Any = None,
) -> ProgressGen[np.ndarray]:
    """Features of every spot of ``adata`` under ``model``'s (frozen) image encoder, through ``cache``;
    crops of ``size_px`` (default: the training crop, :func:`sample_patch_px`), mapped by ``stain`` (a
    :class:`~napari_mclstexp.data.slide_stain.StainNormaliser`) when given.

    A cache hit reads the matrix back and computes nothing; a miss extracts the patches (``patch_cache``
    if given), computes the features and stores them.

    Returns
    -------
    numpy.ndarray
        float32 (N, F), spot order of ``adata``.
    """
    cfg = model.config
    size_px = int(size_px or sample_patch_px(adata, cfg))
    key = None
    if cache is not None:
        path = image_path(adata)
        if path is not None:
            bf16 = torch.device(device).type == "cuda" and cfg.precision == "bf16"  # bf16 features differ slightly
            key = feature_key(
                path,
                spot_xy(adata),
                size_px,
                cfg.input_px,
                cfg.encoder,
                weights_id(cfg),
                {
                    **preprocessing_of(model),
                    "autocast": "bf16" if bf16 else "fp32",
                    **({"stain": stain.identity(path)} if stain is not None else {}),
                },
            )
            hit = cache.get(key)
            if hit is not None and len(hit) == adata.n_obs:
                yield Progress("features", adata.n_obs, adata.n_obs, message=f"{label} (cached)".strip())
                return hit
    patches = yield from iter_sample_patches(adata, size_px, cfg.input_px, patch_cache, cancel, stain)
    feats = yield from iter_compute_features(model, patches, device, batch_size=batch_size, cancel=cancel, label=label)
    if cache is not None and key is not None:
        cache.put(key, feats)
    return feats


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (unless ``precision="fp32"``); a no-op elsewhere."""
    if torch.device(device).type == "cuda" and precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
