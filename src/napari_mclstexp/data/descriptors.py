"""Tissue descriptors: fixed (not learned) stain, colour and texture statistics of a spot and its surroundings.

Without downloadable weights a CNN learns its features from a few hundred spots; fixed descriptors of what a
pathologist reads — how much haematoxylin (nuclei) and eosin (stroma, cytoplasm), which colours, which
fine texture — in the spot *and* in a 3× wider view around it are a strong complement
(:mod:`napari_mclstexp.predict.descriptor_model`; measured by ``python -m benchmarks accuracy-descriptors``).

Per view (73 values): per RGB channel the mean, std and fractions in 8 equal bins over 0–255 (30, as
:func:`histogram_features`); haematoxylin/eosin/DAB optical densities by colour deconvolution (Ruifrok &
Johnston's H&E-DAB vectors, as ``skimage.color.rgb2hed``): per channel mean, std and 10/50/90th percentiles
(15; the percentiles read from a histogram of :data:`HED_BINS` bins of :data:`HED_STEP`); and
rotation-invariant uniform local binary patterns of the grey image at radii 1 (8 points) and 3 (16 points)
(28, as scikit-image computes them).

Definition (version :data:`VERSION`): the view image is a square of :data:`CONTEXT` spot patches around the
spot centre at :data:`CELL_PX` px per spot-patch edge, plus :data:`MARGIN` px all round (the texture's
neighbours), :data:`READ_PX` px in all.  Every statistic is a sum over pixels, so it is gathered per
:data:`CELL_PX` cell: the spot view is the central cell, the context view the 3 × 3 cells.  On a whole-slide
grid neighbouring tiles share their cells (:func:`grid_descriptors`): each pixel is described once, not nine
times.  Version 1 (:mod:`.descriptors_v1`: spot view at 64 px, statistics per view) is what older bundles
hold; they keep predicting with it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..progress import CancelToken, ProgressGen
from ._cpu_kernels import ON_GRID, cell_tallies, lbp_codes_cpu

#: The descriptor definition's version (``metadata['descriptors']['version']``; absent: 1).
VERSION = 2
#: The context view's edge, in spot-patch edges (centred on the spot).
CONTEXT = 3
#: The spot view's edge in px (one cell).
CELL_PX = 32
#: Pixels around the context view read for the texture's circle samples.
MARGIN = 4
#: The read's edge in px.
READ_PX = CONTEXT * CELL_PX + 2 * MARGIN
#: Descriptors per view and in all.
PER_VIEW = 30 + 15 + 28
N_DESCRIPTORS = 2 * PER_VIEW
#: Histogram of each stain's optical density: bins and their width (densities ≥ the last edge: last bin).
HED_BINS = 128
HED_STEP = 0.02

#: Stain vectors (rows: haematoxylin, eosin, DAB) in optical density, and their inverse for deconvolution.
_STAINS = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_UNMIX = np.linalg.inv(_STAINS).astype(np.float32)  # OD (N, 3) @ _UNMIX → (N, 3) stain amounts
#: Optical density −ln(v / 255) of each 8-bit value (0 counted as 1, as the darkest measurable).
_OPTICAL_DENSITY = -np.log(np.maximum(np.arange(256, dtype=np.float32), 1.0) / 255.0)
_GREY = np.array([0.299, 0.587, 0.114], np.float32)
_LBP = ((1, 8), (3, 16))  # (radius px, points)

#: Histogram bins per channel over 0–255.
N_BINS = 8
N_FEATURES = 3 + 3 + 3 * N_BINS
#: Layout of a cell's statistics: counts (colour bins, stain bins, LBP codes) then sums (RGB, RGB², HED, HED²).
_COLOUR, _HED = 0, 3 * N_BINS
_LBP1 = _HED + 3 * HED_BINS
_LBP3 = _LBP1 + _LBP[0][1] + 2
_N_COUNTS = _LBP3 + _LBP[1][1] + 2
N_STATS = _N_COUNTS + 12


def histogram_features(patches: np.ndarray, *, chunk: int = 256) -> np.ndarray:
    """Colour features of RGB patches.

    Parameters
    ----------
    patches
        ``(N, H, W, 3)`` uint8 patches.
    chunk
        Patches processed at a time (bounds memory).

    Returns
    -------
    np.ndarray
        ``(N, 30)`` float32, not standardised: per channel mean and std of the intensities
        (0–255 scale, divided by 255), then per channel the fraction of pixels in each of 8 equal
        bins over 0–255 (R bins, G bins, B bins).
    """
    patches = np.asarray(patches)
    if patches.ndim != 4 or patches.shape[-1] != 3:
        raise ValueError(f"patches must be (N, H, W, 3), got shape {patches.shape}")
    n = patches.shape[0]
    out = np.empty((n, N_FEATURES), dtype=np.float32)
    for start in range(0, n, chunk):
        block = patches[start : start + chunk].reshape(min(chunk, n - start), -1, 3)
        values = block.astype(np.float32) / 255.0
        out[start : start + len(block), 0:3] = values.mean(axis=1)
        out[start : start + len(block), 3:6] = values.std(axis=1)
        bins = (block.astype(np.int32) * N_BINS) // 256  # 0..7
        # one bincount for the whole block: bin id offset by (patch, channel)
        offsets = (np.arange(len(block))[:, None, None] * 3 + np.arange(3)) * N_BINS
        counts = np.bincount((bins + offsets).ravel(), minlength=len(block) * 3 * N_BINS)
        hist = counts.reshape(len(block), 3 * N_BINS) / bins.shape[1]
        out[start : start + len(block), 6:] = hist
    return out


def _shifted(grey: np.ndarray, dy: float, dx: float, m: int) -> np.ndarray:
    """``grey`` sampled at ``(y + dy, x + dx)`` (bilinear) for the pixels at least ``m`` px from the edge."""
    h, w = grey.shape[1:]
    y0, x0 = int(np.floor(dy)), int(np.floor(dx))
    fy, fx = dy - y0, dx - x0

    def at(oy: int, ox: int) -> np.ndarray:
        return grey[:, m + oy : h - m + oy, m + ox : w - m + ox]

    out = (1 - fy) * (1 - fx) * at(y0, x0)
    if fx > ON_GRID:
        out = out + (1 - fy) * fx * at(y0, x0 + 1)
    if fy > ON_GRID:
        out = out + fy * (1 - fx) * at(y0 + 1, x0)
        if fx > ON_GRID:
            out = out + fy * fx * at(y0 + 1, x0 + 1)
    return out


def lbp_codes(grey: Any, radius: int, points: int, m: int) -> Any:
    """Uniform rotation-invariant LBP codes (0 … ``points + 1``) of ``(N, H, W)`` float grey images (numpy, or
    torch on any device: the same arithmetic), for the pixels at least ``m`` ≥ ``radius`` px from the edge:
    scikit-image's ``method="uniform"``, the whole batch at once, one bilinear circle sample at a time.  The
    CPU path runs its compiled twin, :func:`._cpu_kernels.lbp_codes_cpu` (equal codes, ~8× faster)."""
    threshold = grey[:, m:-m, m:-m] - 1e-4
    tensor = not isinstance(grey, np.ndarray)
    ones = (threshold * 0).short() if tensor else np.zeros(threshold.shape, np.int16)
    changes = ones * 0
    first = previous = None
    for a in 2 * np.pi * np.arange(points) / points:
        bit = _shifted(grey, -radius * np.sin(a), radius * np.cos(a), m) >= threshold
        ones += bit
        if previous is None:
            first = bit
        else:
            changes += bit != previous
        previous = bit
    changes += previous != first  # the circle closes
    if tensor:
        return ones.where(changes <= 2, ones.new_full((), points + 1))
    return np.where(changes <= 2, ones, points + 1)


def cell_statistics(images: np.ndarray, cell: int) -> np.ndarray:
    """Pixel statistics of ``cell`` × ``cell`` squares of uint8 ``(N, H, W, 3)`` images.

    The cells tile each image inside its :data:`MARGIN` (``H − 2·MARGIN`` and ``W − 2·MARGIN`` multiples of
    ``cell``); the margin only feeds the texture's circle samples.

    Returns
    -------
    np.ndarray
        float64 ``(N, rows, cols, N_STATS)``: per cell the pixel counts of each colour bin, stain-density bin
        and LBP code, then the sums of R, G, B, their squares, H, E, DAB and their squares (additive: a
        region's statistics are the sum of its cells').
    """
    n, h, w, _ = images.shape
    m = MARGIN
    ih, iw = h - 2 * m, w - 2 * m
    if ih <= 0 or iw <= 0 or ih % cell or iw % cell:
        raise ValueError(f"images of {h}×{w} px are not whole {cell} px cells inside a {m} px margin")
    rows, cols = ih // cell, iw // cell
    inner = np.ascontiguousarray(images[:, m : h - m, m : w - m]).reshape(n, -1, 3)
    od = _OPTICAL_DENSITY[inner]
    hed = np.maximum(od @ _UNMIX, 0.0)  # as skimage: no negative amounts; (N, P, 3)
    grey = (images.astype(np.float32) @ _GREY).astype(np.uint8).astype(np.float32)
    lbp = tuple(lbp_codes_cpu(grey, radius, points, m) for radius, points in _LBP)
    layout = (_COLOUR, _HED, _LBP1, _LBP3, _N_COUNTS, N_BINS, HED_BINS)
    return cell_tallies(inner, hed, lbp, (rows, cols, cell, iw), layout, HED_STEP)


def _percentiles(hist: np.ndarray, n: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Percentiles (linear within a bin) of ``(…, HED_BINS)`` density histograms of ``n`` pixels."""
    cum = np.cumsum(hist, axis=-1)
    out = []
    for q in qs:
        rank = q * (n - 1) + 0.5  # the value at rank (0-based) sits in the middle of its pixel's share
        b = np.minimum((cum <= rank).sum(-1, keepdims=True), HED_BINS - 1)
        before = np.take_along_axis(cum, b, -1) - np.take_along_axis(hist, b, -1)
        inside = np.clip((rank - before) / np.maximum(np.take_along_axis(hist, b, -1), 1.0), 0.0, 1.0)
        out.append(((b + inside) * HED_STEP)[..., 0])
    return out


def features_from_statistics(stats: np.ndarray) -> np.ndarray:
    """``(…, PER_VIEW)`` float32 view features from ``(…, N_STATS)`` summed cell statistics."""
    n = stats[..., _COLOUR : _COLOUR + N_BINS].sum(-1, keepdims=True)
    inv = 1.0 / np.maximum(n, 1.0)
    sums = stats[..., _N_COUNTS:]
    mean_rgb, mean_hed = sums[..., 0:3] * inv, sums[..., 6:9] * inv
    std_rgb = np.sqrt(np.maximum(sums[..., 3:6] * inv - mean_rgb**2, 0.0))
    std_hed = np.sqrt(np.maximum(sums[..., 9:12] * inv - mean_hed**2, 0.0))
    hed_hist = stats[..., _HED:_LBP1].reshape(*stats.shape[:-1], 3, HED_BINS)
    q10, q50, q90 = _percentiles(hed_hist, n[..., None], (0.1, 0.5, 0.9))
    parts = [
        mean_rgb / 255.0,
        std_rgb / 255.0,
        stats[..., _COLOUR:_HED] * inv,
        mean_hed,
        std_hed,
        q10,
        q50,
        q90,
        stats[..., _LBP1:_N_COUNTS] * inv,
    ]
    return np.concatenate(parts, axis=-1).astype(np.float32)


def _window_sums(stats: np.ndarray, r0: np.ndarray, c0: np.ndarray, size: int) -> np.ndarray:
    """Sums of ``size`` × ``size`` cells of ``(R, C, K)`` statistics with top-left cells ``(r0, c0)``."""
    integral = np.zeros((stats.shape[0] + 1, stats.shape[1] + 1, stats.shape[2]))
    integral[1:, 1:] = stats.cumsum(0).cumsum(1)
    r1, c1 = r0 + size, c0 + size
    return integral[r1, c1] - integral[r0, c1] - integral[r1, c0] + integral[r0, c0]


def resize_reads(reads: np.ndarray, px: int = READ_PX) -> np.ndarray:
    """Resize uint8 ``(N, E, E, 3)`` reads to ``(N, px, px, 3)`` (antialiased bilinear; no-op at that size)."""
    if reads.shape[1] == px and reads.shape[2] == px:
        return reads
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(reads)).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=(px, px), mode="bilinear", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def read_edge(crop_px: int) -> int:
    """The read's edge in px of the image for a spot patch of ``crop_px`` px (centred on the spot)."""
    return int(round(crop_px * READ_PX / CELL_PX))


def tissue_descriptors(reads: np.ndarray, *, chunk: int = 64) -> np.ndarray:
    """Descriptors of spots from their reads.

    Parameters
    ----------
    reads
        uint8 ``(N, E, E, 3)``: per spot the square of :func:`read_edge` px centred on the spot, at any
        resolution ``E`` (resized to :data:`READ_PX`).
    chunk
        Spots described at a time (bounds memory).

    Returns
    -------
    np.ndarray
        float32 ``(N, N_DESCRIPTORS)``: the spot view's features, then the context view's.
    """
    reads = np.asarray(reads)
    if reads.ndim != 4 or reads.shape[-1] != 3 or reads.shape[1] != reads.shape[2]:
        raise ValueError(f"reads must be square (N, E, E, 3) patches, got shape {reads.shape}")
    out = np.zeros((len(reads), N_DESCRIPTORS), np.float32)
    for start in range(0, len(reads), chunk):
        stats = cell_statistics(resize_reads(reads[start : start + chunk]), CELL_PX)
        spot, context = stats[:, 1, 1], stats.sum(axis=(1, 2))
        out[start : start + len(stats)] = np.concatenate(
            [features_from_statistics(spot), features_from_statistics(context)], 1
        )
    return out


def grid_descriptors(image: np.ndarray, offsets: np.ndarray, device: Any = None) -> np.ndarray:
    """Descriptors of spots whose reads are squares of one image: each pixel described once.

    Parameters
    ----------
    image
        uint8 ``(H, W, 3)`` at :data:`CELL_PX` px per spot-patch edge.
    offsets
        int ``(N, 2)`` (x, y) top-left px of each spot's :data:`READ_PX` read in ``image``.
    device
        A CUDA ``torch.device``: the cells' statistics are gathered there (:func:`cell_statistics_torch`);
        else with numpy on the CPU.

    Returns
    -------
    np.ndarray
        As :func:`tissue_descriptors` of the reads cut from ``image``.  When the offsets share a grid of
        cells of at least 4 px, its cells are described once and summed per spot and context; otherwise the
        reads are cut and described one by one.
    """
    offsets = np.asarray(offsets, np.int64).reshape(-1, 2)
    lo = offsets.min(axis=0) if len(offsets) else np.zeros(2, np.int64)
    rel = offsets - lo
    cell = math.gcd(CELL_PX, *(int(v) for v in np.unique(rel)))
    h = int(rel[:, 1].max(initial=0)) + READ_PX
    w = int(rel[:, 0].max(initial=0)) + READ_PX
    if cell < 4 or len(offsets) < 2:
        reads = np.stack([image[y : y + READ_PX, x : x + READ_PX] for x, y in offsets]) if len(offsets) else None
        return tissue_descriptors(reads) if reads is not None else np.zeros((0, N_DESCRIPTORS), np.float32)
    crop = image[None, lo[1] : lo[1] + h, lo[0] : lo[0] + w]
    if device is not None and getattr(device, "type", "cpu") == "cuda":
        import torch

        stats = cell_statistics_torch(torch.from_numpy(np.ascontiguousarray(crop)).to(device), cell)[0]
    else:
        stats = cell_statistics(crop, cell)[0]
    r0, c0 = rel[:, 1] // cell, rel[:, 0] // cell
    s = CELL_PX // cell
    spot = _window_sums(stats, r0 + s, c0 + s, s)
    context = _window_sums(stats, r0, c0, CONTEXT * s)
    return np.concatenate([features_from_statistics(spot), features_from_statistics(context)], 1)


def iter_sample_descriptors(
    adata: Any,
    crop_px: int,
    input_px: int,
    cache: Any = None,
    cancel: CancelToken | None = None,
    version: int = VERSION,
    stain: Any = None,
) -> ProgressGen[np.ndarray]:
    """Generator: :func:`tissue_descriptors` of every spot of a sample (yields the patch reading's progress).

    Parameters
    ----------
    adata
        The sample (spots and ``source_image_path``).
    crop_px, input_px
        The spot patch's edge in full-resolution px and the model's input edge (version 1 reads at it).
    cache
        Optional :class:`~napari_mclstexp.data.patches.PatchCache`.
    version
        The descriptor definition: :data:`VERSION`, or 1 for bundles made before it
        (:func:`.descriptors_v1.iter_sample_descriptors`).
    stain
        Optional :class:`~napari_mclstexp.data.slide_stain.StainNormaliser`: the reads mapped to its reference.
    """
    from .patches import iter_sample_patches

    if int(version) == 1:
        from .descriptors_v1 import iter_sample_descriptors as v1

        return (yield from v1(adata, crop_px, input_px, cache, cancel, stain))
    reads = yield from iter_sample_patches(adata, read_edge(int(crop_px)), READ_PX, cache, cancel, stain)
    return tissue_descriptors(np.asarray(reads))


def cell_statistics_torch(images: Any, cell: int) -> np.ndarray:
    """:func:`cell_statistics` with torch ops on the images' device (a CUDA device: off the CPU).

    ``images`` is a uint8 ``(N, H, W, 3)`` tensor; the result is the same float64 array (on the host).  The
    grey levels and stain bins are float32 sums whose last bit may round differently from numpy's, so a
    pixel's code can differ at a bin's very edge (a few pixels in a thousand at most).
    """
    import torch

    dev = images.device
    n, h, w, _ = images.shape
    m = MARGIN
    ih, iw = h - 2 * m, w - 2 * m
    if ih <= 0 or iw <= 0 or ih % cell or iw % cell:
        raise ValueError(f"images of {h}×{w} px are not whole {cell} px cells inside a {m} px margin")
    rows, cols = ih // cell, iw // cell
    inner = images[:, m : h - m, m : w - m].reshape(n, -1, 3).long()
    cell_of = ((torch.arange(ih, device=dev) // cell)[:, None] * cols + torch.arange(iw, device=dev) // cell).ravel()
    cell_id = torch.arange(n, device=dev)[:, None] * (rows * cols) + cell_of[None, :]
    hed = (torch.from_numpy(_OPTICAL_DENSITY).to(dev)[inner] @ torch.from_numpy(_UNMIX).to(dev)).clamp_min(0.0)
    three = torch.arange(3, device=dev)
    codes = [
        (inner >> 5) + three * N_BINS + _COLOUR,
        (hed * (1.0 / HED_STEP)).long().clamp_max(HED_BINS - 1) + three * HED_BINS + _HED,
    ]
    grey = (images.float() @ torch.from_numpy(_GREY).to(dev)).to(torch.uint8).float()
    for (radius, points), offset in zip(_LBP, (_LBP1, _LBP3), strict=True):
        lbp = lbp_codes(grey, radius, points, m)
        codes.append(lbp.reshape(n, -1, 1).long() + offset)
    flat = (torch.cat(codes, dim=2) + cell_id[:, :, None] * _N_COUNTS).ravel()
    counts = torch.bincount(flat, minlength=n * rows * cols * _N_COUNTS).reshape(n, rows, cols, _N_COUNTS)
    values = torch.cat([inner.double(), hed.double()], dim=2)
    values = torch.cat([values, values * values], dim=2)[:, :, [0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11]]
    sums = values.reshape(n, rows, cell, cols, cell, 12).sum(dim=(2, 4))
    return torch.cat([counts.double(), sums], dim=3).cpu().numpy()
