"""Whole-slide images as lazy multiscale arrays.

Backends, tried in order: tifffile for TIFF family files (tiled/pyramidal TIFF, OME-TIFF, SVS, NDPI;
tiles are decoded on demand: tiled 8-bit levels by :mod:`.wsi_tiles` in the reading thread, so several
threads decode in parallel; other levels through zarr), Pillow for JPEG/PNG and other flat images (decoded on
first pixel access, never at open time), and OpenSlide (optional extra) for formats only it reads (MRXS, SCN, ...).
Every level is exposed as an array-like of shape (H, W, 3) uint8, level 0 first.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageReadError, MissingInputError
from .wsi_levels import OpenSlideLevel, PillowLevel, RGBLevel
from .wsi_tiles import TileCache, TiledLevel, TileFile, direct_tiled_page

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: Formats only OpenSlide reads (tried when the ``openslide`` extra is installed).
_OPENSLIDE_SUFFIXES = {".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide"}
_UNIT_TO_UM = {"µm": 1.0, "um": 1.0, "micron": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "Å": 1e-4}
#: Accept a stated pixel size only in this plausible range (µm/px); e.g. 72 dpi defaults are ignored.
_MPP_RANGE = (0.01, 100.0)


def _plausible(mpp: float | None) -> float | None:
    if mpp is None or not np.isfinite(mpp):
        return None
    return float(mpp) if _MPP_RANGE[0] <= mpp <= _MPP_RANGE[1] else None


class Slide:
    """An opened whole-slide image: lazy levels, pixel size, region reads.

    Attributes
    ----------
    path : pathlib.Path
        The image file.
    levels : list
        Array-likes of shape (H, W, 3) uint8, level 0 (full resolution) first; reading a slice decodes
        only the tiles it touches.
    downsamples : list of float
        Downsampling factor of each level relative to level 0.
    mpp : float or None
        Micrometres per level-0 pixel when the file states it.
    backend : str
        ``"tifffile"``, ``"pillow"`` or ``"openslide"``.
    """

    def __init__(self, path: Path, levels: list[Any], mpp: float | None, backend: str, handle: Any = None) -> None:
        self.path = path
        self.levels = levels
        self.mpp = mpp
        self.backend = backend
        self._handle = handle
        h0, w0 = levels[0].shape[:2]
        self.downsamples = [float((h0 / lv.shape[0] + w0 / lv.shape[1]) / 2) for lv in levels]

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of level 0 in pixels."""
        return int(self.levels[0].shape[0]), int(self.levels[0].shape[1])

    def read_region(self, x0: int, y0: int, width: int, height: int, level: int = 0) -> np.ndarray:
        """Read a rectangle of one level, zero-padded where it leaves the image.

        Parameters
        ----------
        x0, y0
            Top-left corner in pixels **of that level** (column, row); may be negative.
        width, height
            Size in pixels of that level.
        level
            Pyramid level (0 = full resolution).

        Returns
        -------
        numpy.ndarray
            uint8 array of shape (height, width, 3).
        """
        arr = self.levels[level]
        h, w = arr.shape[:2]
        x0, y0, width, height = int(x0), int(y0), int(width), int(height)
        out = np.zeros((max(0, height), max(0, width), 3), dtype=np.uint8)
        xa, ya = max(x0, 0), max(y0, 0)
        xb, yb = min(x0 + width, w), min(y0 + height, h)
        if xb > xa and yb > ya:
            try:
                if isinstance(arr, TiledLevel):  # decodes straight into ``out``, no intermediate copy
                    return arr.read_into(out, y0, x0)
                data = np.asarray(arr[ya:yb, xa:xb])
            except ImageReadError:
                raise
            except Exception as err:  # codec errors of truncated tiles surface here
                raise ImageReadError(f"cannot read pixels (truncated or corrupt tile?): {err}", self.path) from err
            out[ya - y0 : yb - y0, xa - x0 : xb - x0] = data[..., :3]
        return out

    def best_level(self, downsample: float) -> int:
        """Index of the coarsest level whose downsample does not exceed ``downsample``."""
        ok = [i for i, d in enumerate(self.downsamples) if d <= downsample * 1.001]
        return max(ok) if ok else 0

    def thumbnail(self, max_px: int = 1024) -> np.ndarray:
        """A downscaled RGB copy whose longer side is at most ``max_px`` pixels (uint8 (h, w, 3))."""
        from PIL import Image

        if isinstance(self.levels[0], PillowLevel) and len(self.levels) == 1:
            small = self.levels[0].reduced(max_px)
            if small is not None:
                return small
        h, w = self.shape
        factor = max(h, w) / max_px
        level = self.best_level(max(1.0, factor))
        lh, lw = self.levels[level].shape[:2]
        data = self.read_region(0, 0, lw, lh, level)
        scale = min(1.0, max_px / max(lh, lw))
        if scale < 1.0:
            size = (max(1, round(lw * scale)), max(1, round(lh * scale)))
            data = np.asarray(Image.fromarray(data).resize(size, Image.Resampling.BOX))
        return data

    def close(self) -> None:
        """Release the file handle(s) (``handle`` may be a list: the TIFF file and the tile descriptor)."""
        handles = self._handle if isinstance(self._handle, list) else [self._handle]
        self._handle = None
        for handle in handles:
            if handle is not None:
                handle.close()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Slide({str(self.path)!r}, shape={self.shape}, levels={len(self.levels)}, mpp={self.mpp}, "
            f"backend={self.backend!r})"
        )


def _ome_mpp(xml: str | None) -> float | None:
    if not xml:
        return None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    for el in root.iter():
        if el.tag.endswith("Pixels") and "PhysicalSizeX" in el.attrib:
            unit = el.attrib.get("PhysicalSizeXUnit", "µm")
            return _plausible(float(el.attrib["PhysicalSizeX"]) * _UNIT_TO_UM.get(unit, 1.0))
    return None


def _tiff_mpp(tif: Any) -> float | None:
    """Pixel size from OME-XML, an SVS description (``MPP = ...``), or TIFF resolution tags."""
    mpp = _ome_mpp(tif.ome_metadata) if tif.is_ome else None
    if mpp:
        return mpp
    page = tif.pages.first
    match = re.search(r"MPP\s*=\s*([0-9.eE+-]+)", page.description or "")
    if match:
        mpp = _plausible(float(match.group(1)))
        if mpp:
            return mpp
    tags = page.tags
    if "XResolution" in tags and "ResolutionUnit" in tags:
        num, den = tags["XResolution"].value
        unit = int(tags["ResolutionUnit"].value)
        if num and den:
            per_unit = num / den  # pixels per unit
            um = {2: 25400.0, 3: 1e4}.get(unit)
            if um:
                return _plausible(um / per_unit)
    return None


def _open_tiff(path: Path) -> Slide:
    import tifffile
    import zarr

    tiles = None
    try:
        tif = tifffile.TiffFile(path)
        series = tif.series[0]
        store = series.aszarr()
        root = zarr.open(store, mode="r")
    except Exception as err:
        raise ImageReadError(f"cannot read TIFF image: {err}", path) from err
    try:
        if isinstance(root, zarr.Group):
            arrays = [root[str(i)] for i in range(len(series.levels))]
        else:
            arrays = [root]
        axes = series.axes
        levels: list[Any] = []
        # Tiled levels are read directly (parallel decoding, see wsi_tiles); others through zarr.
        pages = [direct_tiled_page(lv, path) for lv in series.levels[: len(arrays)]]
        tiles = TileFile(path) if any(p is not None for p in pages) else None
        cache = TileCache()
        for i, arr in enumerate(arrays):
            if tiles is not None and pages[i] is not None:
                levels.append(TiledLevel(pages[i], tiles, cache, key=i))
            elif axes == "YXS" and arr.shape[2] == 3 and arr.dtype == np.uint8:
                levels.append(arr)
            elif "Y" in axes and "X" in axes:
                levels.append(RGBLevel(arr, axes))
            else:
                raise ImageReadError(f"unsupported TIFF axes {axes!r} (expected an RGB or grey image)", path)
        mpp = _tiff_mpp(tif)
    except ImageReadError:
        tif.close()
        if tiles is not None:
            tiles.close()
        raise
    except Exception as err:
        tif.close()
        if tiles is not None:
            tiles.close()
        raise ImageReadError(f"cannot read TIFF image: {err}", path) from err
    return Slide(path, levels, mpp, "tifffile", handle=[tif, tiles])


def _open_pillow(path: Path) -> Slide:
    from PIL import Image, UnidentifiedImageError

    # Slide-sized JPEGs (e.g. 9,300 × 9,900 px) exceed Pillow's decompression-bomb guard.
    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, 2_000_000_000)
    try:
        with Image.open(path) as im:
            size = im.size
            dpi = im.info.get("dpi")
    except UnidentifiedImageError as err:
        raise ImageReadError("not an image (no reader recognises this file)", path) from err
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageReadError(f"cannot read image: {err}", path) from err
    mpp = None
    if dpi and dpi[0]:
        mpp = _plausible(25400.0 / float(dpi[0]))
    return Slide(path, [PillowLevel(path, size)], mpp, "pillow")


def _open_openslide(path: Path) -> Slide | None:
    try:
        import openslide
    except ImportError:
        return None
    try:
        osr = openslide.OpenSlide(str(path))
    except Exception as err:
        raise ImageReadError(f"OpenSlide cannot read this file: {err}", path) from err
    levels = [OpenSlideLevel(osr, i) for i in range(osr.level_count)]
    mpp = osr.properties.get(openslide.PROPERTY_NAME_MPP_X)
    return Slide(path, levels, _plausible(float(mpp)) if mpp else None, "openslide", handle=osr)


def open_slide(path: str | os.PathLike) -> Slide:
    """Open a whole-slide or flat image lazily (no level-0 decoding at open time).

    Parameters
    ----------
    path
        TIFF/OME-TIFF/SVS/NDPI (tifffile + zarr), JPEG/PNG/... (Pillow), or MRXS/SCN/... when the
        optional ``openslide`` extra is installed.

    Returns
    -------
    Slide
        Use as a context manager or call :meth:`Slide.close`.

    Raises
    ------
    MissingInputError
        The file does not exist.
    ImageReadError
        The file is not an image, is truncated, or no backend reads it.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise MissingInputError("image file not found", p)
    if p.is_dir():
        raise ImageReadError("expected an image file, got a folder", p)
    if p.stat().st_size == 0:
        raise ImageReadError("image file is empty", p)
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if p.suffix.lower() in _OPENSLIDE_SUFFIXES:
        slide = _open_openslide(p)
        if slide is None:
            raise ImageReadError(
                f"{p.suffix} slides need the optional OpenSlide backend: pip install 'napari-mclstexp[openslide]'", p
            )
        return slide
    if magic in _TIFF_MAGIC:
        return _open_tiff(p)
    try:
        return _open_pillow(p)
    except ImageReadError:
        slide = _open_openslide(p)
        if slide is None:
            raise
        return slide
