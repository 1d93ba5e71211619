"""Lazy (H, W, 3) uint8 array-likes over the backends of :mod:`napari_mclstexp.io.wsi`.

Each exposes ``shape``, ``dtype``, ``ndim``, ``__getitem__`` (reads only what the slice touches) and
``__array__``, which is what napari's multiscale image layers and ``Slide.read_region`` need.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageReadError


class LevelArray:
    """The array-like surface every slide level shares: ``shape`` (H, W, 3), ``dtype`` uint8, ``ndim``,
    ``size``, ``__array__``; subclasses set ``shape`` and implement ``__getitem__``."""

    shape: tuple[int, int, int]
    dtype = np.dtype(np.uint8)
    ndim = 3

    @property
    def size(self) -> int:
        """Number of elements (napari's layer-data protocol needs it)."""
        return int(np.prod(self.shape))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:, :]  # type: ignore[index]
        return out.astype(dtype) if dtype is not None else out

    @staticmethod
    def finish(data: np.ndarray, key: tuple) -> np.ndarray:
        """Apply the channel part of ``key`` to a (h, w, 3) block and drop the axes indexed by integers."""
        data = data[:, :, key[2]]
        if not isinstance(key[1], slice):
            data = data[:, 0]
        if not isinstance(key[0], slice):
            data = data[0]
        return data


class RGBLevel(LevelArray):
    """Lazy (H, W, 3) uint8 view over a zarr/tiff array with other axes (``YX``, ``CYX``, ``YXS`` + alpha, ...)."""

    def __init__(self, array: Any, axes: str) -> None:
        self._array = array
        self._axes = axes
        self._y = axes.index("Y")
        self._x = axes.index("X")
        self._c = axes.index("S") if "S" in axes else (axes.index("C") if "C" in axes else None)
        n_c = array.shape[self._c] if self._c is not None else 1
        self.shape = (array.shape[self._y], array.shape[self._x], 3)
        self._n_c = n_c

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (3 - len(key))
        ys, xs = (k if isinstance(k, slice) else slice(k, k + 1) for k in key[:2])
        index: list[Any] = [0] * self._array.ndim
        index[self._y], index[self._x] = ys, xs
        if self._c is not None:
            index[self._c] = slice(0, min(3, self._n_c))
        data = np.asarray(self._array[tuple(index)])
        kept = [i for i in range(self._array.ndim) if i in (self._y, self._x, self._c)]
        order = [kept.index(self._y), kept.index(self._x)]
        if self._c is not None:
            order.append(kept.index(self._c))
        data = np.transpose(data, order)
        if data.ndim == 2:
            data = data[..., None]
        if data.shape[-1] < 3:
            data = np.repeat(data[..., :1], 3, axis=-1)
        return self.finish(to_uint8(data), key)


def to_uint8(data: np.ndarray) -> np.ndarray:
    if data.dtype == np.uint8:
        return data
    if data.dtype == np.uint16:
        return (data >> 8).astype(np.uint8)
    if data.dtype == bool:
        return data.astype(np.uint8) * 255
    data = data.astype(np.float32)
    top = float(np.nanmax(data)) if data.size else 1.0
    scale = 255.0 if top <= 1.0 else 255.0 / top
    return np.clip(np.nan_to_num(data) * scale, 0, 255).astype(np.uint8)


class PillowLevel(LevelArray):
    """Flat image decoded by Pillow on first pixel access (the header alone is read at open)."""

    def __init__(self, path: Path, size: tuple[int, int]) -> None:
        self._path = path
        self.shape = (size[1], size[0], 3)
        self._pixels: np.ndarray | None = None
        self._lock = threading.Lock()

    @property
    def decoded(self) -> bool:
        """Whether the pixels have been decoded."""
        return self._pixels is not None

    def _load(self) -> np.ndarray:
        with self._lock:
            if self._pixels is None:
                from PIL import Image

                Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, 2_000_000_000)
                try:
                    with Image.open(self._path) as im:
                        self._pixels = np.asarray(im.convert("RGB"))
                except (OSError, ValueError, SyntaxError) as err:
                    raise ImageReadError(f"cannot decode image (truncated or corrupt?): {err}", self._path) from err
            return self._pixels

    def __getitem__(self, key: Any) -> np.ndarray:
        return self._load()[key]

    def reduced(self, max_px: int) -> np.ndarray | None:
        """A copy with the longer side at most ``max_px`` px, via JPEG DCT scaling when not yet decoded."""
        if self._pixels is not None:
            return None
        from PIL import Image

        try:
            with Image.open(self._path) as im:
                im.draft("RGB", (max(1, im.width * max_px // max(im.size)), max(1, im.height * max_px // max(im.size))))
                im = im.convert("RGB")
                im.thumbnail((max_px, max_px), Image.Resampling.BOX)
                return np.asarray(im)
        except (OSError, ValueError, SyntaxError) as err:
            raise ImageReadError(f"cannot decode image (truncated or corrupt?): {err}", self._path) from err

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._load()
        return out.astype(dtype) if dtype is not None else out


class OpenSlideLevel(LevelArray):
    """One OpenSlide level as a lazy (H, W, 3) uint8 array-like (2-D slices only).

    OpenSlide takes a region's corner in level-0 pixels and divides it by the level's downsample; where
    that falls between pixels it resamples (bilinear).  With integral downsamples (a pyramid halved
    exactly) the corner ``x0 * ds`` maps back exactly and reads are pixel for pixel those of the level;
    otherwise the corner is rounded to the nearest level-0 pixel, which keeps the shift within
    ``1 / (2 ds)`` of a level pixel (truncating it could shift by twice that).
    """

    def __init__(self, osr: Any, level: int) -> None:
        self._osr = osr
        self._level = level
        w, h = osr.level_dimensions[level]
        self._ds = float(osr.level_downsamples[level])
        self.shape = (h, w, 3)

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (3 - len(key))
        y0, y1, _ = key[0].indices(self.shape[0]) if isinstance(key[0], slice) else (key[0], key[0] + 1, 1)
        x0, x1, _ = key[1].indices(self.shape[1]) if isinstance(key[1], slice) else (key[1], key[1] + 1, 1)
        if y1 <= y0 or x1 <= x0:
            return np.zeros((max(0, y1 - y0), max(0, x1 - x0), 3), np.uint8)[..., key[2]]
        region = self._osr.read_region(
            (round(x0 * self._ds), round(y0 * self._ds)), self._level, (int(x1 - x0), int(y1 - y0))
        )
        return self.finish(np.asarray(region.convert("RGB")), key)
