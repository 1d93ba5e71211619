"""Gene value → RGBA colour, vectorised through a 256-entry colormap lookup table (no Qt: readers use it).

Switching the coloured gene on 100k spots must stay well under 100 ms of our own work, so colours are
computed as one RGBA array from a cached table.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Colour of spots whose value is NaN (RGBA, 0–1).
NAN_RGBA = np.array([0.5, 0.5, 0.5, 0.3], dtype=np.float32)


@lru_cache(maxsize=32)
def colormap_lut(name: str, n: int = 256) -> np.ndarray:
    """``(n, 4)`` float32 RGBA table of the napari/vispy colormap ``name``."""
    from napari.utils.colormaps import ensure_colormap  # here: importing this package stays napari-free

    cmap = ensure_colormap(name)
    return np.asarray(cmap.map(np.linspace(0.0, 1.0, n)), dtype=np.float32)


def auto_limits(values: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0)) -> tuple[float, float]:
    """Robust contrast limits: the given percentiles of the finite values (never equal)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, percentiles)
    if not hi > lo:
        lo, hi = float(finite.min()), float(finite.max())
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def values_to_rgba(
    values: np.ndarray, colormap: str, limits: tuple[float, float], *, opacity: float = 1.0
) -> np.ndarray:
    """Map values to RGBA through ``colormap`` between ``limits`` (clipped).

    Parameters
    ----------
    values
        ``(N,)`` numbers (any unit); NaN gets :data:`NAN_RGBA`.
    colormap
        A napari colormap name (``"viridis"``, ``"magma"``, ...).
    limits
        ``(low, high)`` contrast limits in the values' unit.
    opacity
        Alpha of the finite values, 0–1.

    Returns
    -------
    numpy.ndarray
        ``(N, 4)`` float32 RGBA in 0–1.
    """
    lut = colormap_lut(colormap)
    lo, hi = float(limits[0]), float(limits[1])
    span = hi - lo if hi > lo else 1.0
    v = np.asarray(values, dtype=np.float32)
    scaled = (v - lo) * ((len(lut) - 1) / span)
    nan = ~np.isfinite(scaled)
    idx = np.clip(np.nan_to_num(scaled, nan=0.0), 0, len(lut) - 1).astype(np.intp)
    rgba = lut[idx]
    if opacity != 1.0:
        rgba[:, 3] *= opacity
    if nan.any():
        rgba[nan] = NAN_RGBA
    return rgba


def gradient_image(colormap: str, width: int = 256, height: int = 12) -> np.ndarray:
    """``(height, width, 4)`` uint8 horizontal gradient of ``colormap`` (for a colorbar widget)."""
    lut = colormap_lut(colormap, width)
    row = (lut * 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(row[None], height, axis=0))
