"""Self-supervised pretraining of an image encoder on unlabelled tissue tiles (SimCLR).

Two augmented views of every tile (random resized crop, flips/90° rotations, colour jitter) go through
the encoder and a small projection MLP; the NT-Xent loss (Chen et al. 2020, SimCLR) pulls the two views
of a tile together and pushes the other ``2·(B − 1)`` views of the batch away.  SimCLR needs one encoder
and one forward pass per view: on a 2-core CPU a step costs about two thirds of BYOL's (which also
runs an EMA target network and a predictor; see ``benchmarks/pretrain.py``).

The encoder is built with :func:`~napari_mclstexp.model.encoders.make_image_encoder` exactly as the
training does, so its state dict (:attr:`PretrainResult.state_dict`) has the keys ``train --weights
FILE`` loads.  The projection MLP is thrown away.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.augment import color_jitter, flip_rot90
from ..device import resolve_device
from ..errors import InputError
from ..model.encoders import make_image_encoder
from ..progress import CancelToken, Progress, ProgressGen

__all__ = ["PretrainResult", "augment_views", "iter_pretrain_tiles", "nt_xent", "random_resized_crop"]

#: ImageNet statistics (``image_norm="imagenet"``), as :mod:`napari_mclstexp.model.mclstexp`.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


@dataclass
class PretrainResult:
    """What :func:`iter_pretrain_tiles` returns.

    Attributes
    ----------
    state_dict
        The encoder's tensors (CPU), keys as ``make_image_encoder(encoder, "none", input_px)`` has them.
    encoder, input_px, image_norm
        The encoder name, its input edge (px) and the input scaling it was trained with.
    history
        One dict per epoch: ``epoch``, ``loss`` (mean NT-Xent), ``seconds``, ``tiles_per_s``.
    n_tiles
        Tiles trained on.
    seconds
        Wall time of the training loop (s).
    """

    state_dict: dict[str, torch.Tensor]
    encoder: str
    input_px: int
    image_norm: str
    history: list[dict[str, float]] = field(default_factory=list)
    n_tiles: int = 0
    seconds: float = 0.0


class _SimCLR(nn.Module):
    """Encoder + projection MLP (feature → hidden → ``proj_dim``), as in SimCLR."""

    def __init__(self, encoder: nn.Module, feat_dim: int, proj_dim: int = 128) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = nn.Sequential(
            nn.Linear(feat_dim, feat_dim),
            nn.BatchNorm1d(feat_dim),
            nn.ReLU(inplace=True),
            nn.Linear(feat_dim, proj_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encoder(x))


def nt_xent(z: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """NT-Xent loss of ``2B`` projections where rows ``i`` and ``i + B`` are two views of one tile.

    Parameters
    ----------
    z
        (2B, D) projections (any scale: L2-normalised here).
    temperature
        Softmax temperature τ (dimensionless).

    Returns
    -------
    torch.Tensor
        0-d mean cross-entropy of finding each view's partner among the other ``2B − 1`` views.
    """
    n = z.shape[0]
    if n % 2 or n < 4:
        raise ValueError(f"nt_xent needs an even number (≥ 4) of views, got {n}")
    z = F.normalize(z.float(), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    b = n // 2
    target = torch.cat([torch.arange(b, n), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, target)


def random_resized_crop(
    x: torch.Tensor, out_px: int, scale: tuple[float, float] = (0.3, 1.0), generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-image random crop (area fraction in ``scale``, aspect ratio 3/4–4/3) resized to ``out_px``.

    Crops are read with ``torchvision.ops.roi_align`` (2 × 2 samples per output pixel: averaged, so
    shrinking does not alias), one call for the batch.

    Parameters
    ----------
    x
        float (N, 3, H, W) images.
    out_px
        Output edge (px).
    scale
        Range of the crop's area as a fraction of the image's.
    """
    from torchvision.ops import roi_align

    n, _, h, w = x.shape
    r = torch.rand(n, 4, generator=generator, device=x.device)
    area = scale[0] + (scale[1] - scale[0]) * r[:, 0]
    log_ratio = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * r[:, 1]
    ratio = log_ratio.exp()
    cw = (area * ratio).sqrt().clamp(max=1.0) * w
    ch = (area / ratio).sqrt().clamp(max=1.0) * h
    x0 = r[:, 2] * (w - cw)
    y0 = r[:, 3] * (h - ch)
    idx = torch.arange(n, device=x.device, dtype=x.dtype)
    boxes = torch.stack([idx, x0, y0, x0 + cw, y0 + ch], dim=1).to(x.dtype)
    return roi_align(x, boxes, output_size=(out_px, out_px), spatial_scale=1.0, sampling_ratio=2, aligned=True)


def augment_views(
    tiles: torch.Tensor,
    input_px: int,
    *,
    crop_scale: tuple[float, float] = (0.3, 1.0),
    jitter: tuple[float, float, float] = (0.4, 0.4, 0.4),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One random view of each tile: resized crop, colour jitter, flips/90° rotations.

    Parameters
    ----------
    tiles
        uint8 (N, H, W, 3) tiles (any device).
    input_px
        Edge of the views (px).

    Returns
    -------
    torch.Tensor
        float (N, 3, input_px, input_px) in [0, 1].
    """
    x = tiles.permute(0, 3, 1, 2).float().div_(255.0)
    x = random_resized_crop(x, input_px, crop_scale, generator=generator)
    x = color_jitter(x.clamp_(0.0, 1.0), *jitter, generator=generator)
    return flip_rot90(x, True, True, generator=generator)


def _scale_input(x: torch.Tensor, image_norm: str) -> torch.Tensor:
    """The input scaling :meth:`MclSTExp.forward_images` applies (``imagenet``, ``none``, ``bgr255``)."""
    if image_norm == "imagenet":
        mean = torch.tensor(_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(_STD, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std
    if image_norm == "bgr255":
        return x.flip(1) * 255.0
    return x


def iter_pretrain_tiles(
    tiles: np.ndarray | Sequence[np.ndarray],
    *,
    encoder: str = "smallcnn",
    init: str = "none",
    input_px: int = 64,
    image_norm: str = "none",
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    temperature: float = 0.2,
    crop_scale: tuple[float, float] = (0.3, 1.0),
    jitter: tuple[float, float, float] = (0.4, 0.4, 0.4),
    seed: int = 0,
    device: str = "auto",
    threads: int | None = None,
    cancel: CancelToken | None = None,
) -> ProgressGen[PretrainResult]:
    """Pretrain ``encoder`` with SimCLR on uint8 tiles.

    Parameters
    ----------
    tiles
        uint8 (N, H, W, 3) tissue tiles (N ≥ 4), e.g. from
        :func:`napari_mclstexp.workflows.pretrain_tiles.iter_collect_tiles`; views are cropped from them.
    encoder, input_px, image_norm
        As the :class:`~napari_mclstexp.model.presets.TrainConfig` that will load the weights.
    init
        Starting weights: ``"none"`` (random), ``"imagenet"`` or a local file (continued pretraining).
    epochs, batch_size, lr, weight_decay
        Passes over the tiles, tiles per step (2 views each), AdamW learning rate (cosine decay) and
        weight decay.
    temperature
        NT-Xent temperature.
    crop_scale, jitter
        Area range of the random resized crop; (brightness, contrast, saturation) jitter strengths.
    seed
        Seeds the initial weights, tile order and augmentation.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``…
    threads
        torch CPU threads during the run (restored afterwards); ``None`` keeps the current number.
    cancel
        Checked before every step.

    Yields
    ------
    Progress
        Stage ``"pretrain"``, one per step, metrics ``epoch``, ``loss``, ``tiles_per_s``, ``eta_s``.

    Returns
    -------
    PretrainResult
    """
    arr = np.asarray(tiles)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise InputError(f"tiles must be uint8 (N, H, W, 3), got {arr.dtype} {tuple(arr.shape)}")
    n = len(arr)
    batch = min(int(batch_size), n)
    if batch < 2:
        raise InputError(f"self-supervised pretraining needs at least 2 tiles, got {n}")
    if image_norm not in ("imagenet", "none", "bgr255"):
        raise InputError(f"unknown image_norm {image_norm!r}; choose imagenet, none or bgr255")
    dev = resolve_device(device)
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        return (
            yield from _simclr_loop(
                arr,
                encoder,
                init,
                input_px,
                image_norm,
                epochs,
                batch,
                lr,
                weight_decay,
                temperature,
                crop_scale,
                jitter,
                seed,
                dev,
                cancel,
            )
        )
    finally:
        torch.set_num_threads(old_threads)


def _simclr_loop(
    arr: np.ndarray,
    encoder: str,
    init: str,
    input_px: int,
    image_norm: str,
    epochs: int,
    batch: int,
    lr: float,
    weight_decay: float,
    temperature: float,
    crop_scale: tuple[float, float],
    jitter: tuple[float, float, float],
    seed: int,
    dev: torch.device,
    cancel: CancelToken | None,
) -> ProgressGen[PretrainResult]:
    """The training loop of :func:`iter_pretrain_tiles` (arguments checked there)."""
    n = len(arr)
    torch.manual_seed(seed)
    enc, feat_dim = make_image_encoder(encoder, init, input_px)
    net = _SimCLR(enc, feat_dim).to(dev).train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = n // batch  # drop the last partial batch: BatchNorm and the loss want full ones
    total = max(1, epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    data = torch.from_numpy(np.ascontiguousarray(arr))
    rng = np.random.default_rng(seed)
    gen = torch.Generator(device=dev).manual_seed(seed + 1)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        t_epoch, losses = time.perf_counter(), []
        order = rng.permutation(n)
        for b in range(steps_per_epoch):
            if cancel is not None:
                cancel.raise_if_cancelled()
            idx = torch.from_numpy(np.sort(order[b * batch : (b + 1) * batch]))
            x = data[idx].to(dev, non_blocking=True)
            views = torch.cat(
                [augment_views(x, input_px, crop_scale=crop_scale, jitter=jitter, generator=gen) for _ in range(2)]
            )
            loss = nt_xent(net(_scale_input(views, image_norm)), temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
            elapsed = time.perf_counter() - start
            yield Progress(
                "pretrain",
                step,
                total,
                message=f"self-supervised pretraining, epoch {epoch + 1}/{epochs}",
                metrics={
                    "epoch": float(epoch + 1),
                    "loss": losses[-1],
                    "tiles_per_s": step * batch / max(elapsed, 1e-9),
                    "eta_s": elapsed / step * (total - step),
                },
            )
        seconds = time.perf_counter() - t_epoch
        history.append(
            {
                "epoch": float(epoch + 1),
                "loss": float(np.mean(losses)) if losses else float("nan"),
                "seconds": seconds,
                "tiles_per_s": steps_per_epoch * batch / max(seconds, 1e-9),
            }
        )
    state = {k: v.detach().cpu().contiguous() for k, v in net.encoder.state_dict().items()}
    return PretrainResult(
        state_dict=state,
        encoder=encoder,
        input_px=int(input_px),
        image_norm=image_norm,
        history=history,
        n_tiles=n,
        seconds=time.perf_counter() - start,
    )
