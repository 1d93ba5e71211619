"""Tissue detection on a low-resolution copy of a slide, so whole-slide prediction skips background.

H&E tissue is coloured (pink/purple) while glass is white and padding black: both have near-zero
saturation.  The mask is an Otsu threshold of the (lightly smoothed) HSV saturation, clamped to a
plausible range so that an all-tissue or all-glass image is not split in two, optionally combined with
an optical-density threshold; small specks are removed and small holes filled (scikit-image).

``method="he"`` (the whole-slide default) asks for both: coloured *and* dense enough (optical density
above :data:`OD_FLOOR`), which rejects the faint pink haze of stained glass around a section (her2st
C4), and drops pen marks (:func:`pen_mask`: green/blue ink hues, black ink).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import ndimage
from skimage import filters, morphology

#: Otsu threshold on saturation is clamped into this range (saturation in [0, 1]).
SATURATION_RANGE = (0.04, 0.12)
#: Otsu threshold on optical density (sum over RGB of -log10(I/255)) is clamped into this range.
OD_RANGE = (0.15, 0.6)
METHODS = ("saturation", "od", "both", "he")
#: ``"he"``: optical density (sum over RGB) below this is glass, however pink (her2st C4 haze ≈ 0.25,
#: the palest stroma ≈ 0.35).
OD_FLOOR = 0.3
#: Pen ink hues (HSV hue in [0, 1]): yellow-green to cyan, outside eosin (pink 0.85–1) and haematoxylin
#: (purple-blue 0.6–0.85; her2st nuclei reach hue 0.64 at saturation 0.53).
PEN_HUES = (0.15, 0.6)
#: Below this fraction of the thumbnail, the ``"he"`` rule is taken to have missed a pale stain.
MIN_HE_FRACTION = 0.01
#: Blue ink shares haematoxylin's hue (0.6–0.7) but is far more saturated than any stain.
BLUE_INK = (0.6, 0.7, 0.7)


def _clamped_otsu(values: np.ndarray, lo: float, hi: float) -> float:
    """Otsu's threshold of ``values`` clamped into ``[lo, hi]`` (``hi`` when the values are constant)."""
    if values.size == 0 or float(values.max() - values.min()) < 1e-6:
        return hi
    return float(np.clip(filters.threshold_otsu(values), lo, hi))


def tissue_mask(
    rgb: np.ndarray,
    *,
    method: str = "saturation",
    min_object_px: int = 64,
    max_hole_px: int = 64,
    smooth_px: float = 1.0,
) -> np.ndarray:
    """Boolean tissue mask of a (low-resolution) RGB image.

    Parameters
    ----------
    rgb
        ``(H, W, 3)`` uint8 image, e.g. a slide thumbnail.
    method
        ``"saturation"`` (HSV saturation > clamped Otsu), ``"od"`` (optical density > clamped Otsu,
        black padding excluded), ``"both"`` (either) or ``"he"`` (coloured *and* optical density above
        :data:`OD_FLOOR`, pen marks removed: rejects faint stained glass).
    min_object_px
        Connected tissue pieces of at most this many pixels (of ``rgb``) are dropped.
    max_hole_px
        Background holes of at most this many pixels inside tissue are filled.
    smooth_px
        Gaussian sigma (pixels of ``rgb``) applied before thresholding.

    Returns
    -------
    np.ndarray
        ``(H, W)`` bool, True on tissue.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    rgb = np.asarray(rgb)[..., :3]
    mask = np.zeros(rgb.shape[:2], dtype=bool)
    if method == "he":
        hsv = rgb_to_hsv(rgb)
        od, padding = _optical_density(rgb, smooth_px)
        sat = filters.gaussian(hsv[1], sigma=smooth_px) if smooth_px else hsv[1]
        mask = (sat > _clamped_otsu(sat, *SATURATION_RANGE)) & (od > OD_FLOOR) & ~padding & ~pen_mask(rgb, hsv=hsv)
    if method in ("saturation", "both"):
        sat = rgb_to_hsv(rgb)[1]
        if smooth_px:
            sat = filters.gaussian(sat, sigma=smooth_px)
        mask |= sat > _clamped_otsu(sat, *SATURATION_RANGE)
    if method in ("od", "both"):
        od, padding = _optical_density(rgb, smooth_px)
        mask |= (od > _clamped_otsu(od[~padding], *OD_RANGE)) & ~padding
    if min_object_px > 0:
        mask = morphology.remove_small_objects(mask, max_size=int(min_object_px))
    if max_hole_px > 0:
        mask = morphology.remove_small_holes(mask, max_size=int(max_hole_px))
    return mask


def _optical_density(rgb: np.ndarray, smooth_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Optical density summed over RGB (smoothed), and the black padding (never tissue)."""
    od = -np.log10(np.clip(rgb.astype(np.float32), 1.0, 255.0) / 255.0).sum(axis=-1)
    padding = _brightest(rgb) < 16  # zero padding outside the scanned area is not tissue
    od[padding] = 0.0  # before smoothing, so padding does not bleed into its neighbours
    if smooth_px:
        od = filters.gaussian(od, sigma=smooth_px)
    return od, padding


def _brightest(rgb: np.ndarray) -> np.ndarray:
    """Per pixel the largest of R, G, B (three planes compared: faster than a reduction over a 3-long axis)."""
    return np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(hue, saturation, value)`` float64 planes of a uint8 ``(H, W, 3)`` image: the values of
    ``skimage.color.rgb2hsv`` (same float64 operations, ties resolved in its order: blue, green, red),
    computed per colour plane instead of over the last axis (a third of its time on a slide thumbnail)."""
    rgb = np.asarray(rgb)[..., :3]
    r, g, b = (np.multiply(rgb[..., c], 1.0 / 255.0, dtype=np.float64) for c in range(3))  # as img_as_float
    value = np.maximum(np.maximum(r, g), b)
    delta = value - np.minimum(np.minimum(r, g), b)
    flat = delta == 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        sat = np.where(flat, 0.0, delta / value)
        hue = np.where(r == value, (g - b) / delta, 0.0)
        hue = np.where(g == value, 2.0 + (b - r) / delta, hue)
        hue = np.where(b == value, 4.0 + (r - g) / delta, hue)
        hue = (hue / 6.0) % 1.0
    hue[flat] = 0.0
    return hue, sat, value


def pen_mask(
    rgb: np.ndarray, *, min_saturation: float = 0.4, max_value: float = 0.2, hsv: tuple | None = None
) -> np.ndarray:
    """Pen marks: saturated green/cyan ink (hues :data:`PEN_HUES`), very saturated blue ink
    (:data:`BLUE_INK`) or near-black ink.

    Parameters
    ----------
    rgb
        ``(H, W, 3)`` uint8 image.
    min_saturation
        Coloured ink is at least this saturated (HSV, 0–1).
    max_value
        Black ink is darker than this (HSV value, 0–1); black padding (< 16/255) is not ink.
    hsv
        ``rgb``'s :func:`rgb_to_hsv` planes when the caller has them.

    Returns
    -------
    np.ndarray
        ``(H, W)`` bool, slightly dilated so the ink's anti-aliased rim goes too.
    """
    hue, sat, val = rgb_to_hsv(rgb) if hsv is None else hsv
    ink = (hue > PEN_HUES[0]) & (hue < PEN_HUES[1]) & (sat > min_saturation)
    ink |= (hue >= BLUE_INK[0]) & (hue < BLUE_INK[1]) & (sat > BLUE_INK[2])
    ink |= (val < max_value) & (_brightest(np.asarray(rgb)) >= 16)
    return ndimage.binary_dilation(ink, iterations=1) if ink.any() else ink


def slide_tissue_mask(slide: Any, *, max_px: int = 1024, **kwargs: Any) -> tuple[np.ndarray, float]:
    """Tissue mask of a slide computed on its thumbnail.

    Parameters
    ----------
    slide
        An open :class:`~napari_mclstexp.io.wsi.Slide` (uses ``thumbnail`` and ``shape``).
    max_px
        Longer side of the thumbnail (px); the pyramid's nearest level is read, never level 0 of a
        large slide.
    **kwargs
        Passed to :func:`tissue_mask` (defaults here: ``method="he"``, specks up to 256 px dropped,
        holes up to 4096 px filled, ``smooth_px=2``: sizes in thumbnail pixels).

    Returns
    -------
    mask, scale
        The bool mask and ``scale`` = mask pixels per full-resolution pixel (≤ 1).
    """
    thumb = slide.thumbnail(max_px)
    h, _ = slide.shape
    kwargs = {"method": "he", "min_object_px": 256, "max_hole_px": 4096, "smooth_px": 2.0, **kwargs}
    mask = tissue_mask(thumb, **kwargs)
    if kwargs["method"] == "he" and mask.mean() < MIN_HE_FRACTION:
        # a very pale stain (optical density below the glass floor everywhere): colour alone decides
        mask = tissue_mask(thumb, **{**kwargs, "method": "saturation"})
        if mask.any():
            warnings.warn(
                f"{getattr(slide, 'path', 'slide')}: the stain is too pale to tell tissue from "
                "stained glass; tissue found by colour alone (check the tissue layer)",
                UserWarning,
                stacklevel=2,
            )
    return mask, thumb.shape[0] / float(h)


def tile_tissue_fraction(mask: np.ndarray, scale: float, xy: np.ndarray, size_px: float) -> np.ndarray:
    """Fraction of tissue inside square tiles, from a low-resolution mask (exact box sums).

    Parameters
    ----------
    mask
        ``(h, w)`` bool tissue mask.
    scale
        Mask pixels per full-resolution pixel.
    xy
        ``(N, 2)`` tile centres in full-resolution px (x, y).
    size_px
        Tile edge in full-resolution px.

    Returns
    -------
    np.ndarray
        ``(N,)`` float in [0, 1]; parts of a tile outside the image count as background.
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    h, w = mask.shape
    integral = np.zeros((h + 1, w + 1), dtype=np.int64)
    integral[1:, 1:] = np.cumsum(np.cumsum(mask, axis=0, dtype=np.int64), axis=1)
    half = size_px / 2.0
    # tile footprint in mask pixels (outward rounding), before and after clipping to the mask
    fx0, fx1 = np.floor((xy[:, 0] - half) * scale), np.ceil((xy[:, 0] + half) * scale)
    fy0, fy1 = np.floor((xy[:, 1] - half) * scale), np.ceil((xy[:, 1] + half) * scale)
    x0, x1 = (np.clip(v, 0, w).astype(int) for v in (fx0, fx1))
    y0, y1 = (np.clip(v, 0, h).astype(int) for v in (fy0, fy1))
    inside = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    footprint = np.maximum((fx1 - fx0) * (fy1 - fy0), 1.0)
    return np.clip(inside / footprint, 0.0, 1.0)


def iter_slide_tissue_mask(path: Any, *, cancel: Any = None, **kwargs: Any):
    """Generator form of :func:`slide_tissue_mask` for a slide file (opened and closed here).

    Yields
    ------
    Progress
        Stage ``"tissue"`` (0 of 1, then 1 of 1).

    Returns
    -------
    mask, scale
        As :func:`slide_tissue_mask`.
    """
    from ..io.wsi import open_slide
    from ..progress import Progress

    yield Progress("tissue", 0, 1, message="finding tissue")
    with open_slide(path) as slide:
        if cancel is not None:
            cancel.raise_if_cancelled()
        mask, scale = slide_tissue_mask(slide, **kwargs)
    yield Progress("tissue", 1, 1, message=f"{mask.mean():.0%} of the slide is tissue")
    return mask, scale
