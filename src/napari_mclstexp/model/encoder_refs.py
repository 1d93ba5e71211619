"""Encoder weights in bundles: embedded, or referenced by SHA-256 so a bundle does not copy gigabytes.

A model trained with encoder weights from a local file (``config.weights`` a path), with the encoder
frozen (no ``unfreeze_last``) and without ``config.embed_encoder``, is saved without its
``image_encoder.*`` tensors (an encoder that trained is always embedded: it no longer equals the file);
``metadata.json`` records
``encoder_weights = {"embedded": false, "sha256": ..., "file": <path at training>, "bytes": ...}``.
Loading the model reads that file again (or the one given as ``Bundle.encoder_weights``) and refuses a
file with another hash.  Random (``none``), ImageNet and hub weights, and any small encoder a user
asks to embed, travel inside the bundle as before.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import BundleError, MissingInputError

ENCODER_PREFIX = "image_encoder."


def is_local_file(weights: str) -> bool:
    """Whether a ``weights`` spec names a file (not ``none``/``imagenet``/``hub``)."""
    return weights not in ("", "none", "imagenet", "hub")


def _embeds(cfg: Any) -> bool:
    """Whether a model trained from a weights file must carry its encoder tensors.

    Only a frozen encoder equals the file; one trained end to end, or with its last blocks unfrozen,
    has moved away from it, and referencing the file would silently load the untrained weights.
    """
    return bool(cfg.embed_encoder) or not bool(cfg.freeze) or int(cfg.unfreeze_last) > 0


def encoder_metadata(cfg: Any, model: Any) -> dict[str, Any]:
    """The bundle's ``encoder_weights`` and ``preprocessing`` entries for a trained model."""
    from .frozen import preprocessing_of
    from .weights import file_sha256

    weights = str(cfg.weights)
    info: dict[str, Any] = {"spec": weights if not is_local_file(weights) else "file", "embedded": True}
    if is_local_file(weights):
        path = Path(weights).expanduser().resolve()
        info.update(sha256=file_sha256(path), file=str(path), bytes=path.stat().st_size, embedded=_embeds(cfg))
    return {
        "encoder_weights": info,
        "preprocessing": preprocessing_of(model),
        "freeze": bool(cfg.freeze),
        "unfreeze_last": int(cfg.unfreeze_last),
        "head": cfg.head,
    }


def strip_referenced(state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Drop the encoder's tensors from ``state`` when the metadata says they are referenced, not embedded."""
    info = metadata.get("encoder_weights") or {}
    if info.get("embedded", True):
        return state
    return {k: v for k, v in state.items() if not k.startswith(ENCODER_PREFIX)}


def referenced_weights(
    metadata: dict[str, Any], override: str | os.PathLike | None = None, bundle_path: Path | None = None
) -> str | None:
    """Path of the referenced encoder weights after checking its hash, or None when embedded.

    Raises
    ------
    BundleError
        The file is missing, or its SHA-256 differs from the one the bundle was trained with.
    """
    from .weights import file_sha256

    info = metadata.get("encoder_weights") or {}
    if info.get("embedded", True):
        return None
    path = Path(override if override is not None else info.get("file", "")).expanduser()
    want = str(info.get("sha256", ""))
    if not path.is_file():
        raise BundleError(
            f"this bundle references encoder weights {info.get('file')} (sha256 {want[:12]}…) that are not "
            "there: pass the same file (CLI --encoder-weights PATH)",
            bundle_path,
        )
    got = file_sha256(path)
    if got != want:
        raise BundleError(
            f"encoder weights {path} have sha256 {got[:12]}…, but the bundle was trained with {want[:12]}…: "
            "a different file (pass the file the model was trained with)",
            bundle_path,
        )
    return str(path)


def build_bundle_model(bundle: Any, device: torch.device | str = "cpu") -> torch.nn.Module:
    """Rebuild a bundle's model: encoder weights from the referenced file when not embedded."""
    from .mclstexp import build_model

    try:
        weights = referenced_weights(bundle.metadata, getattr(bundle, "encoder_weights", None), bundle.path)
    except MissingInputError as err:  # pragma: no cover - referenced_weights raises BundleError itself
        raise BundleError(str(err), bundle.path) from err
    if bundle.config.get("head") == "ridge":
        from .ridge import RidgeModel

        model = RidgeModel(bundle.config, len(bundle.genes), image_weights=weights or "none")
    else:
        model = build_model(bundle.config, len(bundle.genes), bundle.pos_shape, image_weights=weights or "none")
    strict = weights is None
    try:
        result = model.load_state_dict(bundle.state_dict, strict=strict)
    except RuntimeError as err:
        raise BundleError(f"weights do not fit the model described by the metadata: {err}") from err
    if not strict:
        missing = [k for k in result.missing_keys if not k.startswith(ENCODER_PREFIX)]
        if missing or result.unexpected_keys:
            raise BundleError(
                f"weights do not fit the model: missing {missing[:4]}, unexpected {list(result.unexpected_keys)[:4]}",
                bundle.path,
            )
    return model.to(device).eval()
