"""Prediction at the spots of a sample: patches → image embeddings → retrieval from the bundle's bank.

Also holds the pieces whole-slide prediction shares: device choice, batched embedding (``inference_mode``,
bf16 autocast on CUDA) and the prediction AnnData layout (ARCHITECTURE.md, "predict/ and bundle").
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..analysis.report import json_safe
from ..data.scales import value_normalization
from ..progress import CancelToken, Progress, ProgressGen
from . import smoothing
from .descriptor_model import blend, bundle_descriptor_model, descriptor_version, descriptor_weight
from .embedder import ImageEmbedder
from .heads import predict_from_embeddings
from .novelty import wants_descriptors
from .options import DEFAULT, PredictOptions
from .smoothing import bundle_alpha, neighbour_graph

if TYPE_CHECKING:
    from anndata import AnnData

    from ..bundle import Bundle

#: Image patches per forward pass by device type.
DEFAULT_BATCH = {"cuda": 256, "mps": 128, "cpu": 64}


def resolve(device: str | torch.device) -> torch.device:
    """``"auto"`` → cuda > mps > cpu; an unusable device raises ``InputError`` (device.py)."""
    from ..device import resolve_device

    return resolve_device(device)


def default_batch(device: torch.device, bundle: Bundle) -> int:
    """Patches per batch when the options give none: :data:`DEFAULT_BATCH` of the device; on a CPU up to 4×
    that for small inputs (no more pixels per batch than 64 patches of 224 px): per-batch costs (thread
    hand-offs, weight reorders) dominate small batches, and the quick preset's 64 px patches embed about
    1.4× faster 256 at a time than 64."""
    base = int(DEFAULT_BATCH.get(device.type, 64))
    if device.type != "cpu":
        return base
    px = int(bundle.config["input_px"]) * int(bundle.config.get("context_scale", 1))
    return int(min(4 * base, max(base, base * (224 / max(px, 1)) ** 2)))


def prepare_model(bundle: Bundle, device: torch.device) -> torch.nn.Module:
    """The bundle's model on ``device`` in eval mode, channels_last on CUDA; on a CPU with its image encoder's
    batch norms folded into the convolutions (:func:`.fuse.fold_for_inference`)."""
    model = bundle.build_model(device)
    if device.type == "cpu":
        from .fuse import fold_for_inference

        model = fold_for_inference(model)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        model.channels_last = True
        torch.backends.cudnn.benchmark = True  # fixed patch size: let cuDNN pick the fastest kernels
    return model


def bundle_embedder(
    bundle: Bundle,
    device: torch.device,
    precision: str = "bf16",
    batch_size: int | None = None,
    tta: bool | None = None,
) -> ImageEmbedder:
    """An :class:`ImageEmbedder` of the bundle's model on ``device``.

    On CUDA it is kept on the bundle object and handed out again to later calls with the same settings
    (the next slide of a cohort, the next region), which then replay the CUDA graph captured by the first
    call instead of rebuilding the model, autotuning and capturing again; elsewhere a fresh one.
    """
    if device.type != "cuda":
        return ImageEmbedder(prepare_model(bundle, device), device, precision, batch_size, tta=tta)
    cache = bundle.__dict__.setdefault("_embedders", {})
    key = (str(device), precision, batch_size, tta)
    if key not in cache:
        cache[key] = ImageEmbedder(prepare_model(bundle, device), device, precision, batch_size, tta=tta)
    return cache[key]


def embed_patches(
    model: torch.nn.Module,
    patches: np.ndarray,
    device: torch.device,
    batch_size: int,
    *,
    precision: str = "bf16",
    tta: bool | None = None,
    cancel: CancelToken | None = None,
) -> ProgressGen[torch.Tensor]:
    """Embed patches in batches; yields ``Progress("embed")``; returns float32 ``(N, D)`` on ``device``."""
    n = len(patches)
    embedder = ImageEmbedder(model, device, precision, batch_size, tta=tta)
    out = []
    for start in range(0, n, batch_size):
        if cancel is not None:
            cancel.raise_if_cancelled()
        batch = np.ascontiguousarray(patches[start : start + batch_size])
        out.append(embedder(batch))
        yield Progress("embed", min(start + batch_size, n), n, message="image embeddings")
    if not out:
        return torch.zeros((0, int(model.config.embed_dim)), dtype=torch.float32, device=device)
    return torch.cat(out)


def provenance(bundle: Bundle, k: int, distance: str, **extra: Any) -> dict[str, Any]:
    """The ``uns['mclstexp']`` summary: which model, which retrieval settings, which input."""
    meta = bundle.metadata
    info = {
        "bundle": {
            "path": str(getattr(bundle, "path", "") or ""),
            "format_version": meta.get("format_version"),
            "preset": meta.get("preset"),
            "encoder": meta.get("encoder"),
            "normalization": meta.get("normalization"),
            "train_sections": list(meta.get("train_sections", [])),
            "created": meta.get("created"),
            "bank_spots": len(bundle.bank),
        },
        "k": int(k),
        "distance": str(distance),
        # the scale of X (the bank's values), which evaluation normalises the truth to
        "normalization": value_normalization(bundle.config),
        **extra,
    }
    info = json_safe(info, drop_none=True)
    rel = meta.get("reliability")
    if isinstance(rel, dict) and "genes" in rel:  # per-gene held-out r (analysis.reliability), NaN kept aligned
        info["reliability"] = {
            **json_safe({key: v for key, v in rel.items() if key not in ("genes", "r")}, drop_none=True),
            "genes": [str(g) for g in rel["genes"]],
            "r": np.array([np.nan if v is None else float(v) for v in rel["r"]], np.float32),
        }
    return info


def prediction_anndata(
    bundle: Bundle,
    prediction: np.ndarray,
    uncertainty: np.ndarray,
    embedding: np.ndarray,
    obs: pd.DataFrame,
    spatial: np.ndarray,
    info: dict[str, Any],
    uns_spatial: dict[str, Any] | None = None,
    descriptors: np.ndarray | None = None,
) -> Any:
    """Assemble a prediction AnnData (``X`` float32 over the bundle genes, ``obs['uncertainty']``,
    ``obsm['spatial']``, ``obsm['embedding']``, ``uns['mclstexp']``).

    With a novelty calibration in the bundle (format 2) also ``obs['novelty']`` and
    ``uns['mclstexp']['novel_fraction']`` / ``['novelty']`` (:mod:`.novelty`, from ``embedding`` and, with a
    descriptor calibration, the spots' tissue ``descriptors``: the larger of the two); the model card goes to
    ``uns['mclstexp']['model_card']``."""
    import anndata as ad

    from .novelty import score

    obs = obs.copy()
    obs["uncertainty"] = np.asarray(uncertainty, dtype=np.float32)
    novelty, summary = score(bundle, embedding, descriptors)
    info = {**info, "model_card": json_safe(bundle.card, drop_none=True)}
    if novelty is not None:
        obs["novelty"] = novelty
        info.update(novelty=json_safe(summary, drop_none=True), novel_fraction=summary["novel_fraction"])
    out = ad.AnnData(
        X=np.asarray(prediction, dtype=np.float32),
        obs=obs,
        # object dtype: pandas ≥ 3 would infer its "str" dtype, which anndata does not write by default
        var=pd.DataFrame(index=pd.Index(list(bundle.genes), dtype=object)),
    )
    out.obsm["spatial"] = np.asarray(spatial, dtype=np.float64).copy()
    out.obsm["embedding"] = np.asarray(embedding, dtype=np.float32)
    if uns_spatial:
        out.uns["spatial"] = uns_spatial
    out.uns["mclstexp"] = info
    return out


def bundle_precision(bundle: Bundle) -> str:
    """Precision a bundle's queries are embedded in by default: the one its model trained in."""
    return str(bundle.config.get("precision", "bf16"))


def patch_px_for(bundle: Bundle, mpp: float | None) -> int:
    """Crop edge (full-res px) covering the training patches' µm extent at ``mpp``; else the trained px."""
    from ..data.patches import crop_px

    return crop_px(bundle.patch_px, bundle.patch_um, mpp)


def view_px_for(bundle: Bundle, mpp: float | None) -> tuple[int, int]:
    """``(read edge, stored edge)`` px of the model's view at ``mpp`` (spot patch, plus context if trained so)."""
    from ..data.patches import view_px

    cfg = bundle.config
    return view_px(patch_px_for(bundle, mpp), int(cfg["input_px"]), int(cfg.get("context_scale", 1)))


def predict_at_spots(
    bundle: Bundle,
    adata: AnnData,
    options: PredictOptions = DEFAULT,
    *,
    patch_cache: Any = None,
    cancel: CancelToken | None = None,
) -> ProgressGen[Any]:
    """Predict expression at every spot of ``adata`` from its H&E image.

    Parameters
    ----------
    bundle
        A loaded :class:`~napari_mclstexp.bundle.Bundle`.
    adata
        The sample (spots in ``obsm['spatial']``, full-res px; image at ``source_image_path``).
        Never modified.
    options
        Device, retrieval, batch, precision, TTA, descriptor, smoothing and stain options
        (:class:`~napari_mclstexp.predict.options.PredictOptions`; default: all as the bundle was built).
    patch_cache
        Optional :class:`~napari_mclstexp.data.patches.PatchCache`.
    cancel
        Checked between batches.

    Yields
    ------
    Progress
        Stages ``"patches"``, ``"embed"``, ``"retrieve"`` (and the descriptor reads' ``"patches"``).

    Returns
    -------
    anndata.AnnData
        Same ``obs_names``, ``obs`` columns and ``obsm['spatial']`` as the input; ``X`` the predicted
        normalised expression (bundle genes), ``obs['uncertainty']``, ``obsm['embedding']``,
        ``uns['mclstexp']`` provenance.
    """
    from ..data.patches import iter_sample_patches
    from ..sample import image_path, library_id, microns_per_pixel, spot_xy
    from .stain_choice import stain_normaliser, stain_record

    dev = resolve(options.device)
    precision = options.precision or bundle_precision(bundle)
    k = int(options.k or bundle.config["k"])
    distance = options.distance or bundle.config["distance"]
    batch_size = int(options.batch_size or default_batch(dev, bundle))
    tta = options.tta
    size_px = patch_px_for(bundle, microns_per_pixel(adata))
    input_px = int(bundle.config["input_px"])
    read_px, out_px = view_px_for(bundle, microns_per_pixel(adata))
    normaliser = stain_normaliser(bundle, options.stain)  # the slide's estimate: once, shared with its tiles
    patches = yield from iter_sample_patches(adata, read_px, out_px, patch_cache, cancel, normaliser)
    model = prepare_model(bundle, dev)
    emb = yield from embed_patches(model, patches, dev, batch_size, precision=precision, tta=tta, cancel=cancel)
    if cancel is not None:
        cancel.raise_if_cancelled()
    yield Progress("retrieve", 0, 1, message=f"top-{k} retrieval from {len(bundle.bank)} spots")
    result = predict_from_embeddings(emb, bundle, k, distance)
    alpha = bundle_alpha(bundle, options.smooth)
    prediction = result.prediction.cpu().numpy()
    weight = descriptor_weight(bundle, options.descriptors)
    d = None
    if weight > 0 or wants_descriptors(bundle, options.descriptors):  # read once: blend and novelty share them
        from ..data.descriptors import iter_sample_descriptors

        version = descriptor_version(bundle)
        d = yield from iter_sample_descriptors(adata, size_px, input_px, patch_cache, cancel, version, normaliser)
    if weight > 0:
        prediction = blend(prediction, bundle_descriptor_model(bundle).predict(d), weight)
    if alpha > 0:
        prediction = smoothing.smooth(prediction, neighbour_graph(spot_xy(adata)), alpha)
    yield Progress("retrieve", 1, 1)
    info = provenance(
        bundle,
        k,
        distance,
        mode="spots",
        source_sample=library_id(adata),
        source_image_path=str(image_path(adata) or ""),
        patch_px=int(size_px),
        input_px=input_px,
        tta=bool(bundle.config.get("tta", False) if tta is None else tta),
        neighbour_alpha=alpha,
        descriptor_weight=weight,
        stain=stain_record(normaliser, options.stain, image_path(adata)),
    )
    spatial = adata.uns.get("spatial")
    return prediction_anndata(
        bundle,
        prediction,
        result.uncertainty.cpu().numpy(),
        emb.cpu().numpy(),
        adata.obs,
        adata.obsm["spatial"],
        info,
        uns_spatial=copy.deepcopy(spatial) if isinstance(spatial, dict) else None,
        descriptors=d,
    )
