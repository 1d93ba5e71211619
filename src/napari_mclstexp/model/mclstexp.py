"""The mclSTExp model: image encoder + spot Transformer, projected into one embedding space.

``build_model`` is the single constructor used by the trainer, the bundle loader and prediction.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SampleFormatError
from .encoders import make_image_encoder, without_final_relu
from .heads import ProjectionHead
from .losses import clip_loss
from .presets import TrainConfig, as_config
from .spot import SpotEncoder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Lowest learnable temperature (CLIP caps the logit scale at 100).
MIN_TEMPERATURE = 0.01


class MclSTExp(nn.Module):
    """Contrastive image/spot model (METHOD.md).

    Parameters
    ----------
    config
        Hyperparameters (:class:`~napari_mclstexp.model.presets.TrainConfig`).
    n_genes
        Panel size G.
    pos_shape
        Rows of the x and y position tables (see :func:`pos_shape_for`).
    image_weights
        Override of ``config.weights`` for the image encoder (``"none"`` when loading a bundle, whose
        state dict replaces every weight anyway).
    """

    def __init__(
        self,
        config: TrainConfig,
        n_genes: int,
        pos_shape: tuple[int, int],
        image_weights: str | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.n_genes = int(n_genes)
        self.pos_shape = (int(pos_shape[0]), int(pos_shape[1]))
        weights = config.weights if image_weights is None else image_weights
        self.image_encoder, feat_dim = make_image_encoder(config.encoder, weights, config.input_px)
        if not getattr(config, "final_relu", True):  # the reference's features (paper preset)
            self.image_encoder = without_final_relu(config.encoder, self.image_encoder)
        #: > 1: a context view ``context_scale`` × wider than the spot patch joins it (features concatenated)
        self.context_scale = int(getattr(config, "context_scale", 1))
        views = 2 if self.context_scale > 1 else 1
        self.image_head = ProjectionHead(feat_dim * views, config.embed_dim, config.head_dropout)
        self.spot_encoder = SpotEncoder(
            self.n_genes,
            self.pos_shape,
            heads=config.spot_heads,
            head_dim=config.spot_head_dim,
            mlp_ratio=config.spot_mlp_ratio,
            depth=config.spot_depth,
            dropout=config.spot_dropout,
        )
        self.spot_head = ProjectionHead(self.n_genes, config.embed_dim, config.head_dropout)
        log_t = torch.tensor(math.log(config.temperature), dtype=torch.float32)
        if config.learn_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)
        self.register_buffer("img_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("img_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        #: use channels_last memory format for images (set by the trainer on CUDA)
        self.channels_last = False

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return self.img_mean.device

    @property
    def temperature(self) -> torch.Tensor:
        """Current softmax temperature T (0-d tensor, ≥ 0.01 when learnable)."""
        t = self.log_temperature.exp()
        return t.clamp(min=MIN_TEMPERATURE) if self.config.learn_temperature else t

    def to_input(self, patches: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) patches → float (N, 3, S, S) in [0, 1] on the model's device.

        ``S = input_px × context_scale``: with a context view the input is the wide crop, whose central
        ``input_px`` square is the spot patch (:func:`~napari_mclstexp.data.patches.view_px`).
        """
        x = torch.as_tensor(patches)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"patches must be (N, H, W, 3) uint8, got shape {tuple(x.shape)}")
        x = x.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        size = self.config.input_px * self.context_scale
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward_images(self, x: torch.Tensor) -> torch.Tensor:
        """Float (N, 3, H, W) RGB images in [0, 1] → (N, D) image embeddings.

        ``image_norm``: ``"imagenet"`` standardises with ImageNet mean/std (unless the encoder normalises
        with its own statistics, as foundation models do), ``"none"`` keeps [0, 1], ``"bgr255"`` feeds BGR
        values in 0–255 (the reference's cv2-read Visium images).
        """
        if self.config.image_norm == "imagenet" and not getattr(self.image_encoder, "normalises", False):
            x = (x - self.img_mean) / self.img_std
        elif self.config.image_norm == "bgr255":
            x = x.flip(1) * 255.0
        if self.context_scale > 1:
            centre, context = self.views(x)
            n = len(x)
            feats = self.image_encoder(torch.cat([centre, context]))
            feats = torch.cat([feats[:n], feats[n:]], dim=1)
        else:
            feats = self.image_encoder(x)
        emb = self.image_head(feats)
        return F.normalize(emb.float(), dim=-1) if self.config.l2_normalize else emb

    def views(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The spot view (central ``input_px`` square) and the context view (the whole, downsampled) of a
        wide input ``(N, 3, input_px × context_scale, …)``, each ``(N, 3, input_px, input_px)``."""
        p = self.config.input_px
        c0 = (x.shape[-1] - p) // 2
        centre = x[..., c0 : c0 + p, c0 : c0 + p]
        context = F.interpolate(x, size=(p, p), mode="bilinear", antialias=True, align_corners=False)
        return centre, context

    def encode_images(self, patches: torch.Tensor | np.ndarray, tta: bool | None = None) -> torch.Tensor:
        """uint8 (N, H, W, 3) patches → (N, D) image embeddings (resizing and normalisation included).

        With ``config.test_augment`` (eval mode) each patch gets a random flip/90° rotation first, as
        the reference's Visium loader does at test time.  With test-time augmentation (``tta``,
        default ``config.tta``; only in eval mode) the embedding is the mean over the 8 flips/90°
        rotations of each patch (re-normalised when the model uses L2-normalised embeddings): tissue
        has no orientation, so this removes noise.
        """
        x = self.to_input(patches)
        if self.config.test_augment and not self.training:  # the reference's Visium test loader
            from ..data.augment import flip_rot90

            x = flip_rot90(x, self.config.flips, self.config.rot90)
        use_tta = self.config.tta if tta is None else tta
        if not use_tta or self.training or len(x) == 0:
            return self.forward_images(x)
        views = [x.rot90(k, dims=(2, 3)) for k in range(4)]
        views += [v.flip(-1) for v in views]
        n = len(x)
        emb = self.forward_images(torch.cat(views)).float().view(len(views), n, -1).mean(0)
        return F.normalize(emb, dim=-1) if self.config.l2_normalize else emb

    def encode_spots(self, expr: torch.Tensor, pos: torch.Tensor, context: str | None = None) -> torch.Tensor:
        """(N, G) normalised expression + (N, 2) long positions → (N, D) spot embeddings.

        ``context`` defaults to the config's (``"batch"``: the N spots are one attention sequence).
        """
        feats = self.spot_encoder(expr, pos, context or self.config.context)
        emb = self.spot_head(feats)
        return F.normalize(emb.float(), dim=-1) if self.config.l2_normalize else emb

    def forward(self, images: torch.Tensor, expr: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both embeddings in one call (what DDP wraps).

        Parameters
        ----------
        images
            uint8 (N, H, W, 3) patches, or float (N, 3, H, W) images in [0, 1] (already augmented).
        expr, pos
            (N, G) normalised expression and (N, 2) long position indices of the same spots.

        Returns
        -------
        (img_emb, spot_emb), each (N, D).
        """
        if images.dtype == torch.uint8:
            img = self.encode_images(images)
        else:
            img = self.forward_images(images)
        return img, self.encode_spots(expr, pos)

    def loss(self, img_emb: torch.Tensor, spot_emb: torch.Tensor) -> torch.Tensor:
        """Contrastive loss of matched image/spot embeddings (hard or soft targets per config)."""
        return clip_loss(img_emb, spot_emb, self.temperature, self.config.targets)


def build_model(
    config: TrainConfig | dict[str, Any] | str,
    n_genes: int,
    pos_shape: tuple[int, int],
    *,
    image_weights: str | None = None,
) -> MclSTExp:
    """Construct an :class:`MclSTExp` (on the CPU, train mode).

    Parameters
    ----------
    config
        A :class:`TrainConfig`, its ``to_dict()`` or a preset name.
    n_genes
        Number of genes in the panel.
    pos_shape
        (x rows, y rows) of the position tables.
    image_weights
        Override for ``config.weights`` (e.g. ``"none"`` before loading a saved state dict).
    """
    return MclSTExp(as_config(config), n_genes, pos_shape, image_weights=image_weights)


def spot_positions(adata, config: TrainConfig | dict[str, Any] | str) -> np.ndarray:
    """Map the spots of a sample to position-table indices.

    Parameters
    ----------
    adata
        Sample (AnnData, project conventions).
    config
        ``position_source="array"`` uses ``obs['array_col']`` (x) and ``obs['array_row']`` (y);
        ``"pixel"`` uses ``floor(obsm['spatial'])`` in full-resolution px.

    Returns
    -------
    np.ndarray
        int64 (N, 2) non-negative (x, y) indices.
    """
    cfg = as_config(config)
    if cfg.position_source == "array":
        missing = [c for c in ("array_col", "array_row") if c not in adata.obs]
        if missing:
            raise SampleFormatError(f"obs lacks {', '.join(missing)} (needed for position embeddings)")
        pos = np.stack([adata.obs["array_col"].to_numpy(), adata.obs["array_row"].to_numpy()], axis=1)
    else:
        if "spatial" not in adata.obsm:
            raise SampleFormatError("obsm['spatial'] is missing (needed for position embeddings)")
        pos = np.floor(np.asarray(adata.obsm["spatial"], dtype=float))
    pos = np.asarray(pos, dtype=np.float64)
    if not np.isfinite(pos).all():
        raise SampleFormatError("spot coordinates contain NaN or infinite values")
    return np.clip(np.round(pos), 0, None).astype(np.int64)


def pos_shape_for(samples, config: TrainConfig | dict[str, Any] | str) -> tuple[int, int]:
    """Rows of the (x, y) position tables for training on ``samples``.

    ``pos_table="fixed"`` gives ``(pos_rows, pos_rows)`` (paper: 65,536 each); ``"data"`` gives the
    largest index + 1 over the samples (later samples with larger indices are clamped to the edge).
    """
    cfg = as_config(config)
    if cfg.pos_table == "fixed":
        return (cfg.pos_rows, cfg.pos_rows)
    highs = [spot_positions(a, cfg).max(axis=0) for a in samples if a.n_obs]
    if not highs:
        return (1, 1)
    high = np.max(np.stack(highs), axis=0)
    return (int(high[0]) + 1, int(high[1]) + 1)


@torch.no_grad()
def encode_spot_bank(
    model: MclSTExp,
    expr: np.ndarray | torch.Tensor,
    pos: np.ndarray | torch.Tensor,
    config: TrainConfig | dict[str, Any] | str | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Embed reference spots with the attention context the preset trains with.

    Context ``"batch"`` (paper) embeds chunks of ``bank_chunk`` (32) consecutive spots, as the
    reference code does; context ``"spot"`` embeds every spot alone, exactly as in training.

    Parameters
    ----------
    model
        Trained model (switched to eval mode here).
    expr, pos
        (M, G) normalised expression and (M, 2) position indices, in sample order.
    config
        Defaults to ``model.config``.
    device
        Defaults to the model's device.
    batch_size
        Spots per forward pass for context ``"spot"``.

    Returns
    -------
    torch.Tensor
        float32 (M, D) on the CPU.
    """
    cfg = model.config if config is None else as_config(config)
    dev = torch.device(device) if device is not None else model.device
    model.eval()
    expr_t = torch.as_tensor(np.asarray(expr, dtype=np.float32) if not torch.is_tensor(expr) else expr).float()
    pos_t = torch.as_tensor(np.asarray(pos) if not torch.is_tensor(pos) else pos).long()
    step = cfg.bank_chunk if cfg.context == "batch" else batch_size
    out = []
    for start in range(0, len(expr_t), step):
        e = expr_t[start : start + step].to(dev)
        p = pos_t[start : start + step].to(dev)
        out.append(model.encode_spots(e, p, cfg.context).float().cpu())
    if not out:
        return torch.zeros((0, cfg.embed_dim), dtype=torch.float32)
    return torch.cat(out)
