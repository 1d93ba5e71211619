"""Batch augmentation on tensors, on whatever device the batch lives (no per-sample Python work).

All randomness comes from torch's generator of the batch's device (or ``generator``), so a seeded run
is reproducible and its state can be checkpointed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: ITU-R 601 luma weights (as torchvision's rgb_to_grayscale).
_LUMA = (0.299, 0.587, 0.114)


def _rand(n: int, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, device=x.device, generator=generator, dtype=torch.float32)


def _grey(x: torch.Tensor) -> torch.Tensor:
    # scalar weights: no host → device copy (not allowed while a CUDA graph is being captured)
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return (r * _LUMA[0]).add_(g, alpha=_LUMA[1]).add_(b, alpha=_LUMA[2])


#: Images per chunk of the in-place colour jitter on a CPU (working set in cache); GPUs: whole batch.
JITTER_CHUNK = 16


def _blend_(y: torch.Tensor, other: torch.Tensor | None, ratio: torch.Tensor) -> torch.Tensor:
    """In place ``y ← ratio·y + (1 − ratio)·other`` clamped to [0, 1] (torchvision's blend; None = 0)."""
    r = ratio.view(-1, 1, 1, 1)
    y.mul_(r)
    if other is not None:
        y.addcmul_(other, 1 - r)
    return y.clamp_(0.0, 1.0)


def color_jitter(
    x: torch.Tensor,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    generator: torch.Generator | None = None,
    order: str = "fixed",
) -> torch.Tensor:
    """Per-image random brightness, contrast and saturation (torchvision ``ColorJitter`` semantics).

    Factors are drawn uniformly from ``[1 − v, 1 + v]`` and applied in this fixed order, or with
    ``order="random"`` in a random order per image, as torchvision does.  The fixed-order blends run
    in place on chunks of :data:`JITTER_CHUNK` images (CPU) of one output copy (``x`` is not modified).

    Parameters
    ----------
    x
        float (N, 3, H, W) in [0, 1].
    brightness, contrast, saturation
        Jitter strengths (0 disables).

    Returns
    -------
    torch.Tensor
        Jittered copy of ``x``, in [0, 1].
    """
    n = x.shape[0]

    def factor(v: float) -> torch.Tensor | None:
        return 1.0 + (2.0 * _rand(n, x, generator) - 1.0) * v if v > 0 else None

    fb, fc, fs = factor(brightness), factor(contrast), factor(saturation)  # drawn in this order
    if order == "random" and n:
        return _jitter_random_order(x, (fb, fc, fs), generator)
    out = x.clone()
    if fb is None and fc is None and fs is None:
        return out
    chunk = JITTER_CHUNK if x.device.type == "cpu" else max(n, 1)
    for i in range(0, n, chunk):
        rows = slice(i, i + chunk)
        y = out[rows]
        if fb is not None:
            _blend_(y, None, fb[rows])
        if fc is not None:
            _blend_(y, _grey(y).mean(dim=(1, 2, 3), keepdim=True), fc[rows])
        if fs is not None:
            _blend_(y, _grey(y), fs[rows])
    return out


def _jitter_op(y: torch.Tensor, op: int, f: torch.Tensor) -> torch.Tensor:
    """Out-of-place brightness (0), contrast (1) or saturation (2) blend of ``y`` by factors ``f``."""
    r = f.view(-1, 1, 1, 1)
    if op == 0:
        return (y * r).clamp_(0.0, 1.0)
    other = _grey(y).mean(dim=(1, 2, 3), keepdim=True) if op == 1 else _grey(y)
    return (y * r + other * (1 - r)).clamp_(0.0, 1.0)


def _jitter_random_order(
    x: torch.Tensor, factors: tuple[torch.Tensor | None, ...], generator: torch.Generator | None
) -> torch.Tensor:
    """Brightness/contrast/saturation in a random order per image, without a host sync: in each of
    three rounds every enabled operation runs on the whole batch and each image keeps the one its
    permutation names for that round."""
    n = x.shape[0]
    perm = torch.argsort(torch.rand((n, 3), device=x.device, generator=generator), dim=1)
    y = x
    for slot in range(3):
        out = y
        for op, f in enumerate(factors):
            if f is not None:
                out = torch.where((perm[:, slot] == op).view(-1, 1, 1, 1), _jitter_op(y, op, f), out)
        y = out
    return y.clone() if y is x else y


def flip_rot90(
    x: torch.Tensor, flips: bool = True, rot90: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random horizontal/vertical flips and multiples of 90° rotation per image (square images).

    Together they draw uniformly from the 8 symmetries of the square (dihedral group D4): a horizontal
    flip with probability 1/2, a vertical flip with probability 1/2, then ``k`` ∈ {0..3} quarter turns.
    Each image's draw is reduced to one of the 8 symmetries (vertical flip = horizontal flip + half
    turn).  On a CPU every symmetry is applied only to the images that drew it (one host sync for the
    counts); elsewhere whole-batch selects give the same result without a sync.
    """
    n = x.shape[0]
    flip = torch.zeros(n, dtype=torch.bool, device=x.device)
    turns = torch.zeros(n, dtype=torch.long, device=x.device)
    if flips:
        h = _rand(n, x, generator) < 0.5
        v = _rand(n, x, generator) < 0.5
        flip = h ^ v
        turns = 2 * v.long()
    if rot90:
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"90° rotations need square images, got {tuple(x.shape[-2:])}")
        turns = turns + (_rand(n, x, generator) * 4).long().clamp_(max=3)
    if not (flips or rot90) or n == 0:
        return x
    symmetry = flip.long() * 4 + turns % 4  # rot90^k ∘ hflip^flip
    if x.device.type == "cpu":
        return _apply_grouped(x, symmetry)
    return _apply_masked(x, symmetry, rot90)


def _apply_grouped(x: torch.Tensor, symmetry: torch.Tensor) -> torch.Tensor:
    """Apply each image's symmetry by groups: least memory traffic (CPU); one host sync for the counts."""
    order = torch.argsort(symmetry, stable=True)
    counts = torch.bincount(symmetry, minlength=8).tolist()
    out = torch.empty_like(x)
    start = 0
    for sym, count in enumerate(counts):
        if count:
            idx = order[start : start + count]
            part = x[idx]
            if sym >= 4:
                part = part.flip(-1)
            if sym % 4:
                part = part.rot90(sym % 4, dims=(2, 3))
            out.index_copy_(0, idx, part)
            start += count
    return out


def _apply_masked(x: torch.Tensor, symmetry: torch.Tensor, rot90: bool) -> torch.Tensor:
    """Same result as :func:`_apply_grouped` with whole-batch selects: no host sync, fixed shapes
    (GPUs, where the extra memory traffic is cheap and a sync would stall the step or a CUDA graph)."""

    def where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(mask.view(-1, 1, 1, 1), a, b)

    out = where(symmetry >= 4, x.flip(-1), x)
    turns = symmetry % 4
    res = where(turns == 2, out.rot90(2, dims=(2, 3)), out)
    if rot90:  # odd quarter turns only exist with rot90 (square images)
        res = where(turns == 1, out.rot90(1, dims=(2, 3)), res)
        res = where(turns == 3, out.rot90(3, dims=(2, 3)), res)
    return res


def rotate(
    x: torch.Tensor, max_deg: float, generator: torch.Generator | None = None, mode: str = "bilinear"
) -> torch.Tensor:
    """Rotate each image by a random angle in ``[−max_deg, max_deg]`` about its centre.

    ``mode`` ``"bilinear"`` or ``"nearest"`` (torchvision ``RandomRotation``'s default, the reference
    code's); zero fill outside (as ``RandomRotation(max_deg)`` with fill 0).
    """
    n = x.shape[0]
    angle = (2.0 * _rand(n, x, generator) - 1.0) * math.radians(max_deg)
    cos, sin = angle.cos(), angle.sin()
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def augment_batch(
    x: torch.Tensor,
    *,
    flips: bool = True,
    rot90: bool = True,
    rotate_deg: float = 0.0,
    jitter: tuple[float, float, float] = (0.0, 0.0, 0.0),
    generator: torch.Generator | None = None,
    rotate_mode: str = "bilinear",
    jitter_order: str = "fixed",
    stain: float = 0.0,
) -> torch.Tensor:
    """Training augmentation of a batch: stain perturbation, colour jitter, flips, 90° and/or arbitrary rotation.

    Parameters
    ----------
    x
        float (N, 3, H, W) images in [0, 1] (any device).
    flips, rot90
        Random horizontal/vertical flips and 90° rotations.
    rotate_deg
        Arbitrary rotation range in degrees (0 disables; paper: 180).
    jitter
        (brightness, contrast, saturation) strengths.
    generator
        Optional torch generator on ``x``'s device (default: the device's global generator).
    rotate_mode, jitter_order
        Interpolation of arbitrary rotations (``"bilinear"``/``"nearest"``) and order of the colour
        jitter (``"fixed"``/``"random"``), see :func:`rotate` and :func:`color_jitter`.
    stain
        Strength of the random H, E, DAB perturbation (:func:`~napari_mclstexp.data.stain_augment.stain_jitter`;
        0 disables).

    Returns
    -------
    torch.Tensor
        Augmented float batch, same shape, in [0, 1].
    """
    if x.shape[0] == 0:
        return x
    if stain > 0:
        from .stain_augment import stain_jitter

        x = stain_jitter(x, stain, generator=generator)
    if any(v > 0 for v in jitter):
        x = color_jitter(x, *jitter, generator=generator, order=jitter_order)
    if flips or rot90:
        x = flip_rot90(x, flips, rot90, generator=generator)
    if rotate_deg > 0:
        x = rotate(x, rotate_deg, generator=generator, mode=rotate_mode)
    return x
