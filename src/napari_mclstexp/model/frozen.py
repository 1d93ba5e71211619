"""A model's image encoder used frozen: features before the projection head, preprocessing, freezing."""

from __future__ import annotations

from typing import Any

import torch


def encoder_features(model: Any, x: torch.Tensor) -> torch.Tensor:
    """Float (N, 3, H, W) images in [0, 1] → (N, F) float32 encoder features (no projection head)."""
    enc = model.image_encoder
    if model.config.image_norm == "imagenet" and not getattr(enc, "normalises", False):
        x = (x - model.img_mean) / model.img_std
    return enc(x).float()


def preprocessing_of(model: Any) -> dict[str, Any]:
    """What the model does to [0, 1] images before the encoder (part of the cache key and bundle)."""
    from .foundation import preprocessing

    out = preprocessing(model.image_encoder)
    if out.get("by") == "model":
        out["image_norm"] = model.config.image_norm
    return out


def freeze_encoder(model: Any, unfreeze_last: int = 0) -> int:
    """Stop gradients through the image encoder except its last ``unfreeze_last`` blocks.

    Blocks are a ViT's ``blocks`` (with the final ``norm``) for timm encoders, else the encoder's
    top-level children.  Returns the number of trainable encoder tensors left.
    """
    enc = model.image_encoder
    for p in enc.parameters():
        p.requires_grad_(False)
    if unfreeze_last <= 0:
        return 0
    inner = getattr(enc, "model", enc)
    blocks = list(getattr(inner, "blocks", [])) or [m for m in inner.children() if any(True for _ in m.parameters())]
    tail = blocks[-int(unfreeze_last) :]
    if hasattr(inner, "blocks") and hasattr(inner, "norm"):
        tail.append(inner.norm)
    count = 0
    for module in tail:
        for p in module.parameters():
            p.requires_grad_(True)
            count += 1
    return count
