"""Tissue descriptors, version 1 (bundles made before :data:`.descriptors.VERSION` 2 keep predicting with it).

Fixed (not learned) stain, colour and texture statistics of a spot and its surroundings.

Without downloadable weights a CNN learns its features from a few hundred spots; fixed descriptors of what a
pathologist reads — how much haematoxylin (nuclei) and eosin (stroma, cytoplasm), which colours, which
fine texture — in the spot *and* in a 3× wider view around it are a strong complement
(:mod:`napari_mclstexp.predict.descriptor_model`; measured in ``benchmarks/accuracy_levers.py``).

Per view (73 values): the colour-histogram features (:func:`histogram_features`, also the kNN baseline's,
:mod:`~napari_mclstexp.predict.baseline`) (30),
haematoxylin/eosin/DAB optical densities by colour deconvolution (Ruifrok & Johnston's H&E-DAB vectors, as
``skimage.color.rgb2hed``): per channel mean, std and 10/50/90th percentiles (15), and rotation-invariant
uniform local binary patterns of the grey image at radii 1 (8 points) and 3 (16 points) (28).  Views are taken
from one square read of :data:`CONTEXT` × the spot patch around the spot centre, resized to
:data:`VIEW_PX`: the spot view is its central :data:`SPOT_PX` square, the context view the whole averaged to
:data:`CONTEXT_PX`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..progress import CancelToken, ProgressGen
from ._cpu_kernels import lbp_codes_cpu
from .descriptors import histogram_features, resize_reads

#: The context read's edge, in spot-patch edges (centred on the spot).
CONTEXT = 3
#: The spot view's edge in px (the central square of the read at :data:`VIEW_PX`).
SPOT_PX = 64
#: The whole read's edge in px before it is split into the two views.
VIEW_PX = CONTEXT * SPOT_PX
#: The context view's edge in px (the read averaged over 2 × 2 blocks).
CONTEXT_PX = VIEW_PX // 2
#: Descriptors per view and in all.
PER_VIEW = 30 + 15 + 28
N_DESCRIPTORS = 2 * PER_VIEW

#: Stain vectors (rows: haematoxylin, eosin, DAB) in optical density, and their inverse for deconvolution.
_STAINS = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_UNMIX = np.linalg.inv(_STAINS).astype(np.float32)  # OD (N, 3) @ _UNMIX → (N, 3) stain amounts
#: Optical density −ln(v / 255) of each 8-bit value (0 counted as 1, as the darkest measurable).
_OPTICAL_DENSITY = -np.log(np.maximum(np.arange(256, dtype=np.float32), 1.0) / 255.0)
_GREY = np.array([0.299, 0.587, 0.114], np.float32)
_LBP = ((1, 8), (3, 16))  # (radius px, points)


def stain_features(patches: np.ndarray) -> np.ndarray:
    """``(N, 15)``: per H, E, DAB optical density the mean, std and 10/50/90th percentiles over the pixels."""
    n = len(patches)
    od = _OPTICAL_DENSITY[patches.reshape(n, -1, 3)]
    hed = np.maximum(od @ _UNMIX, 0.0).transpose(0, 2, 1).copy()  # as skimage: no negative amounts; (N, 3, px)
    q = np.percentile(hed, (10, 50, 90), axis=-1)  # (3 quantiles, N, 3 stains)
    return np.concatenate([hed.mean(-1), hed.std(-1), q[0], q[1], q[2]], axis=1).astype(np.float32)


def texture_features(patches: np.ndarray) -> np.ndarray:
    """``(N, 28)``: histograms of uniform rotation-invariant LBP codes (radius 1: 10 bins, radius 3: 18) over
    the pixels at least radius + 1 px inside the patch (:func:`.descriptors.lbp_codes`, compiled)."""
    n = len(patches)
    grey = (patches.astype(np.float32) @ _GREY).astype(np.uint8).astype(np.float32)
    out = []
    for radius, points in _LBP:
        codes = lbp_codes_cpu(grey, radius, points, radius + 1).reshape(n, -1)
        offsets = (np.arange(n) * (points + 2))[:, None]  # one bincount for the batch
        hist = np.bincount((codes + offsets).ravel(), minlength=n * (points + 2)).reshape(n, points + 2)
        out.append((hist / codes.shape[1]).astype(np.float32))
    return np.concatenate(out, axis=1)


def view_features(patches: np.ndarray) -> np.ndarray:
    """``(N, PER_VIEW)`` descriptors of uint8 ``(N, H, W, 3)`` patches: colour, stains, texture."""
    return np.concatenate([histogram_features(patches), stain_features(patches), texture_features(patches)], 1)


def tissue_descriptors(reads: np.ndarray) -> np.ndarray:
    """Descriptors of spots from their context reads.

    Parameters
    ----------
    reads
        uint8 ``(N, E, E, 3)``: per spot a square of :data:`CONTEXT` × the spot patch's edge centred on the
        spot, at any resolution ``E`` (resized to :data:`VIEW_PX`).

    Returns
    -------
    np.ndarray
        float32 ``(N, N_DESCRIPTORS)``: the spot view's :func:`view_features`, then the context view's.
    """
    reads = np.asarray(reads)
    if reads.ndim != 4 or reads.shape[-1] != 3 or reads.shape[1] != reads.shape[2]:
        raise ValueError(f"reads must be square (N, E, E, 3) patches, got shape {reads.shape}")
    if not len(reads):
        return np.zeros((0, N_DESCRIPTORS), np.float32)
    views = resize_reads(reads, VIEW_PX)  # area-averaged to the view size
    lo = (VIEW_PX - SPOT_PX) // 2
    spot = np.ascontiguousarray(views[:, lo : lo + SPOT_PX, lo : lo + SPOT_PX])
    v = views.astype(np.uint16)
    context = ((v[:, 0::2, 0::2] + v[:, 1::2, 0::2] + v[:, 0::2, 1::2] + v[:, 1::2, 1::2] + 2) // 4).astype(np.uint8)
    return np.concatenate([view_features(spot), view_features(context)], axis=1)


def iter_sample_descriptors(
    adata: Any, crop_px: int, input_px: int, cache: Any = None, cancel: CancelToken | None = None, stain: Any = None
) -> ProgressGen[np.ndarray]:
    """Generator: :func:`tissue_descriptors` of every spot of a sample (yields the patch reading's progress).

    Parameters
    ----------
    adata
        The sample (spots and ``source_image_path``).
    crop_px, input_px
        The spot patch's edge in full-resolution px and the model's input edge: the read is
        :data:`CONTEXT` × both, as a whole-slide tile's read, so that spots and tiles see the same pixels.
    cache
        Optional :class:`~napari_mclstexp.data.patches.PatchCache`.
    stain
        Optional :class:`~napari_mclstexp.data.slide_stain.StainNormaliser`: the reads mapped to its reference.
    """
    from .patches import iter_sample_patches

    reads = yield from iter_sample_patches(adata, CONTEXT * int(crop_px), CONTEXT * int(input_px), cache, cancel, stain)
    return tissue_descriptors(np.asarray(reads))
