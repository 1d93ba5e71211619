"""H&E stain vectors of an image (Macenko et al. 2009) and a fixed colour mapping from one staining to another.

Light through a stained section follows Beer–Lambert: per RGB channel the optical density
``OD = −ln((I + 1) / Io)`` is linear in the stain concentrations, ``OD = C · V`` with one unit OD vector per stain
(rows of ``V``: haematoxylin, eosin).  Macenko's estimate, as the reference MATLAB code and ``torchstain``
compute it (the background test aside, :func:`tissue_od`): drop background pixels, project the tissue ODs on
the plane of their two leading principal axes, take the directions at the :data:`ALPHA` and ``100 − ALPHA``
percentiles of the angle as the two stain vectors (haematoxylin: the one absorbing more red), solve the
concentrations by least squares and keep their :data:`PERCENTILE` th percentiles.  Here the angles are measured
from the mean tissue direction, so a cloud that straddles the ±π cut of ``arctan2`` cannot swap the extremes.
On a rendered image this gives torchstain's vectors to three decimals.

:class:`StainMap` maps a source staining to a target one: the source concentrations rescaled so that their
percentiles match the target's, rendered with the target vectors; the part of the OD the two source stains do
not explain is kept (a slide mapped to its own estimate is unchanged).  The mapping is linear in OD, so each
output channel is a product of three 256-entry tables of the input channels (no logarithm or exponential per
pixel; a 256³ table was measured slower, its reads missing the cache).  ``torchstain`` (1.4.1) is not used: its
``normalize`` estimates the source stain of every image it is given (here: every patch), with no public way to
apply one fixed estimate, and its estimation lives in private methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

#: Transmitted light intensity (the background's RGB value), as Macenko's code and torchstain.
IO = 240.0
#: Background optical density per channel, as Macenko's code (a thumbnail pixel with a summed OD below 3 × this
#: is not tissue, :mod:`.slide_stain`).
BETA = 0.15
#: Summed optical density a pixel needs to enter a stain estimate (:func:`tissue_od`).
FLOOR = 0.15
#: The floor of estimates made before :data:`FLOOR` (their dicts name none): ``3 · BETA``.
LEGACY_FLOOR = 3.0 * BETA
#: Below ``LEGACY_FLOOR`` a pixel also has to lie this far (degrees) from the grey axis: not glass.
GREY_DEGREES = 10.0
#: Percentile of the angle taken as each stain's extreme direction.
ALPHA = 1.0
#: Percentile of the concentrations kept as a stain's strength.
PERCENTILE = 99.0
#: Fewest tissue pixels an estimate is made from.
MIN_PIXELS = 500
#: The stain vectors of Ruifrok & Johnston (2001), rows H, E (unit length), as ``skimage.color.rgb2hed``.
RUIFROK_HE = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]]) / np.linalg.norm(
    [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]], axis=1, keepdims=True
)


class StainEstimationError(InputError):
    """Too little tissue (or too little colour) to estimate stain vectors."""


def optical_density(rgb: np.ndarray) -> np.ndarray:
    """``(N, 3)`` float64 optical densities ``−ln((I + 1) / IO)`` of uint8 RGB pixels of any shape ``(..., 3)``."""
    return -np.log((np.asarray(rgb).reshape(-1, 3).astype(np.float64) + 1.0) / IO)


def tissue_od(rgb: np.ndarray, floor: float = FLOOR) -> np.ndarray:
    """Optical densities of the pixels a stain estimate is made from: summed OD at least ``floor``, and those
    below :data:`LEGACY_FLOOR` at least :data:`GREY_DEGREES` from the grey axis (glass is grey, stains are not).

    Macenko's code and torchstain drop pixels below :data:`BETA` in *any* channel, which also drops pale pixels
    of pure eosin (it barely absorbs red).  Those pale pixels are the purest eosin of a slide: with a floor of
    ``3 · BETA`` (this project's first estimates, :data:`LEGACY_FLOOR`) a slide stained with less eosin lost
    them, and its eosin vector turned 11–25° toward haematoxylin (``benchmarks stain --diagnose``).
    """
    od = optical_density(rgb)
    total = od.sum(axis=1)
    keep = total >= float(floor)
    if float(floor) < LEGACY_FLOOR:
        pale = keep & (total < LEGACY_FLOOR)
        cos_grey = total[pale] / (np.sqrt(3.0) * np.linalg.norm(od[pale], axis=1))
        keep[np.flatnonzero(pale)[cos_grey > np.cos(np.radians(GREY_DEGREES))]] = False
    return od[keep]


@dataclass(frozen=True, eq=False)
class StainEstimate:
    """The H&E staining of an image or of a set of images.

    Attributes
    ----------
    vectors
        ``(2, 3)`` unit optical-density vectors, rows haematoxylin and eosin.
    max_concentrations
        ``(2,)`` the :data:`PERCENTILE` th percentile of each stain's concentration over the tissue pixels.
    pixels
        Tissue pixels the estimate was made from.
    floor
        The summed optical density those pixels had at least (:func:`tissue_od`); a slide is estimated with the
        floor of the reference it is mapped to.
    """

    vectors: np.ndarray
    max_concentrations: np.ndarray
    pixels: int = 0
    info: dict[str, Any] = field(default_factory=dict)  #: provenance (tiles, sections, ...)
    floor: float = FLOOR

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``reference_stain`` of a bundle, ``uns['mclstexp']['stain']``)."""
        return {
            "method": "macenko",
            "vectors": [[round(float(v), 6) for v in row] for row in self.vectors],
            "max_concentrations": [round(float(v), 6) for v in self.max_concentrations],
            "percentile": PERCENTILE,
            "io": IO,
            "beta": BETA,
            "alpha": ALPHA,
            "floor": float(self.floor),
            "pixels": int(self.pixels),
            **self.info,
        }

    @classmethod
    def from_dict(cls, data: Any, where: Any = None) -> StainEstimate:
        """Inverse of :meth:`to_dict`; a malformed one raises :class:`~napari_mclstexp.errors.InputError`.
        One without ``floor`` (made before it was recorded) has :data:`LEGACY_FLOOR`."""
        try:
            vectors = np.asarray(data["vectors"], np.float64)
            conc = np.asarray(data["max_concentrations"], np.float64)
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"not a stain reference (needs 'vectors' and 'max_concentrations'): {err}", where) from err
        norms = np.linalg.norm(vectors, axis=1) if vectors.shape == (2, 3) else np.zeros(1)
        if vectors.shape != (2, 3) or conc.shape != (2,) or not (norms > 0).all() or not (conc > 0).all():
            raise InputError(
                "a stain reference needs 2 × 3 non-zero 'vectors' (H, E) and 2 positive 'max_concentrations'", where
            )
        if abs(np.linalg.det(vectors @ vectors.T)) < 1e-8:
            raise InputError("the two stain vectors of the reference are parallel", where)
        info = {k: v for k, v in dict(data).items() if k in ("sections", "tiles", "source")}
        try:
            floor = float(data.get("floor", LEGACY_FLOOR))
        except (TypeError, ValueError) as err:
            raise InputError(f"a stain reference's 'floor' is not a number: {err}", where) from err
        if not 0.0 <= floor <= 3.0:
            raise InputError(f"a stain reference's 'floor' must lie in [0, 3], not {floor}", where)
        return cls(vectors / norms[:, None], conc, int(data.get("pixels", 0) or 0), info, floor)

    def swatches(self) -> np.ndarray:
        """``(2, 3)`` uint8: the colour of haematoxylin and of eosin alone, each at its kept concentration."""
        rgb = IO * np.exp(-self.vectors * self.max_concentrations[:, None]) - 1.0
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)

    def concentrations(self, od: np.ndarray) -> np.ndarray:
        """``(N, 2)`` least-squares H and E concentrations of ``(N, 3)`` optical densities."""
        return np.asarray(od, np.float64) @ np.linalg.pinv(self.vectors)


def estimate_stain(od: np.ndarray, info: dict[str, Any] | None = None, floor: float = FLOOR) -> StainEstimate:
    """Macenko's stain vectors and concentration percentiles of tissue optical densities.

    Parameters
    ----------
    od
        ``(N, 3)`` optical densities of tissue pixels (:func:`tissue_od`); pooled from several images for a
        reference over several sections.
    info
        Provenance kept with the estimate.
    floor
        The floor ``od`` was selected with (:func:`tissue_od`), recorded with the estimate.

    Raises
    ------
    StainEstimationError
        Fewer than :data:`MIN_PIXELS` pixels, or their colours span no plane.
    """
    od = np.asarray(od, np.float64).reshape(-1, 3)
    if len(od) < MIN_PIXELS:
        raise StainEstimationError(f"too little tissue to estimate the stain ({len(od)} pixels, {MIN_PIXELS} needed)")
    _, axes = np.linalg.eigh(np.cov(od.T))
    plane = axes[:, 1:3]  # the two leading principal axes
    t = od @ plane
    mean = t.mean(axis=0)
    if not np.isfinite(mean).all() or np.hypot(*mean) < 1e-9:
        raise StainEstimationError("the tissue colours span no stain plane")
    # angles from the mean direction: a cloud straddling arctan2's ±π cut keeps its two extremes apart
    phi = np.angle((t[:, 0] + 1j * t[:, 1]) * np.exp(-1j * np.arctan2(mean[1], mean[0])))
    lo, hi = np.percentile(phi, (ALPHA, 100.0 - ALPHA)) + np.arctan2(mean[1], mean[0])
    v_lo, v_hi = plane @ np.array([np.cos(lo), np.sin(lo)]), plane @ np.array([np.cos(hi), np.sin(hi)])
    vectors = np.stack([v_lo, v_hi] if v_lo[0] > v_hi[0] else [v_hi, v_lo])  # haematoxylin absorbs more red
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    if abs(np.linalg.det(vectors @ vectors.T)) < 1e-8:
        raise StainEstimationError("the tissue shows a single colour; two stains cannot be told apart")
    conc = od @ np.linalg.pinv(vectors)
    max_c = np.percentile(conc, PERCENTILE, axis=0)
    if not (max_c > 1e-6).all():
        raise StainEstimationError("a stain is absent from the tissue (its concentrations are not positive)")
    return StainEstimate(vectors, max_c, len(od), dict(info or {}), float(floor))


def mapping_matrix(source: StainEstimate, target: StainEstimate) -> np.ndarray:
    """``(3, 3)`` ``M`` with ``OD_target = OD_source @ M`` (row vectors) of :class:`StainMap`."""
    unmix = np.linalg.pinv(source.vectors)  # (3, 2): OD → concentrations
    scale = np.diag(target.max_concentrations / source.max_concentrations)
    residual = np.eye(3) - unmix @ source.vectors  # what the source stains leave unexplained, kept as it is
    return unmix @ scale @ target.vectors + residual


class StainMap:
    """A fixed per-pixel mapping of uint8 RGB from a source staining to a target staining.

    Parameters
    ----------
    source, target
        The two :class:`StainEstimate`.

    Notes
    -----
    Calling it on uint8 ``(..., 3)`` returns a uint8 array of the same shape, pixel by pixel (the result of a
    pixel does not depend on its neighbours or on how the image is cut into patches).  Thread-safe.
    """

    def __init__(self, source: StainEstimate, target: StainEstimate) -> None:
        self.source, self.target = source, target
        self.matrix = mapping_matrix(source, target)
        levels = (np.arange(256, dtype=np.float64) + 1.0) / IO
        # tables[i, j, v] = exp(−OD_i(v) · M_ij): output channel j is IO · Π_i tables[i, j, input_i] − 1
        self.tables = (levels[None, None, :] ** self.matrix[:, :, None]).astype(np.float32)
        self.identity = bool(np.allclose(self.matrix, np.eye(3), atol=1e-9))

    def _channel(self, j: int, r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
        t = self.tables
        value = (t[0, j][r] * t[1, j][g]) * t[2, j][b]
        return np.clip(np.rint(value * np.float32(IO) - np.float32(1.0)), 0, 255).astype(np.uint8)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Map uint8 RGB ``(..., 3)``; returns a new uint8 array of the same shape."""
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.shape[-1:] != (3,):
            raise ValueError(f"expected uint8 (..., 3) RGB, got {rgb.dtype} {rgb.shape}")
        if self.identity:
            return rgb.copy()
        flat = rgb.reshape(-1, 3)
        r, g, b = flat[:, 0], flat[:, 1], flat[:, 2]
        return np.stack([self._channel(j, r, g, b) for j in range(3)], axis=-1).reshape(rgb.shape)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: source, target and the OD matrix."""
        return {
            "source": self.source.to_dict(),
            "target": self.target.to_dict(),
            "matrix": [[round(float(v), 6) for v in row] for row in self.matrix],
        }
