"""Write tiled, compressed, pyramidal OME-TIFF files that :func:`~napari_mclstexp.io.wsi.open_slide` reads lazily."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_path
from ..errors import InputError


def default_levels(shape: tuple[int, int], tile: int = 256) -> int:
    """Number of pyramid levels so that the smallest level fits in about one tile.

    Parameters
    ----------
    shape
        (height, width) of level 0 in pixels.
    tile
        Tile edge in pixels.

    Returns
    -------
    int
        At least 1; each further level halves both axes.
    """
    longest = max(int(shape[0]), int(shape[1]), 1)
    return 1 + max(0, math.ceil(math.log2(longest / tile))) if longest > tile else 1


def downsample_2x(image: np.ndarray) -> np.ndarray:
    """Halve an (H, W, C) uint8 image by 2 × 2 box averaging (odd edges are averaged over what exists).

    Parameters
    ----------
    image
        (H, W, C) array.

    Returns
    -------
    numpy.ndarray
        uint8 array of shape (ceil(H / 2), ceil(W / 2), C).
    """
    image = np.asarray(image)
    h, w = image.shape[:2]
    # Pad odd edges by replication so border pixels are not darkened by zero padding.
    if h % 2 or w % 2:
        image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    h2, w2 = image.shape[0] // 2, image.shape[1] // 2
    # Integer box sum (uint16 holds 4 × 255): no float copy of a large level.
    total = image.reshape(h2, 2, w2, 2, -1).sum(axis=(1, 3), dtype=np.uint16)
    return ((total + 2) // 4).astype(np.uint8)


def write_pyramid_tiff(
    path: str | os.PathLike,
    image: np.ndarray,
    *,
    mpp: float | None = None,
    tile: int = 256,
    compression: str | None = "jpeg",
    levels: int | None = None,
    quality: int = 90,
) -> Path:
    """Write an RGB image as a tiled pyramidal OME-TIFF (reduced levels in SubIFDs).

    Parameters
    ----------
    path
        Destination file (``.ome.tif`` recommended).  Written atomically.
    image
        (H, W, 3) uint8 RGB image (level 0, full resolution).
    mpp
        Micrometres per level-0 pixel; stored as OME ``PhysicalSizeX/Y`` and TIFF resolution tags.
    tile
        Tile edge in pixels (multiple of 16).
    compression
        ``"jpeg"`` (default, lossy, like scanners), ``"zlib"``/``"deflate"``, ``"lzw"``, or ``None``.
    levels
        Number of pyramid levels including level 0 (each halves the previous); default: until the
        smallest level fits in about one tile.
    quality
        JPEG quality (1–100), ignored for other compressions.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    import tifffile

    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputError(f"expected an (H, W, 3) RGB image, got shape {image.shape}", path)
    image = image[..., :3]
    if image.dtype != np.uint8:
        raise InputError(f"expected uint8 pixels, got {image.dtype}", path)
    if tile % 16:
        raise InputError(f"tile size must be a multiple of 16 px, got {tile}", path)
    n_levels = default_levels(image.shape[:2], tile) if levels is None else max(1, int(levels))
    comp = None if compression in (None, "none", "") else str(compression).lower()
    options: dict = {"photometric": "rgb", "tile": (tile, tile), "compression": comp}
    if comp == "jpeg":
        options["compressionargs"] = {"level": int(quality)}
    metadata: dict = {"axes": "YXS"}
    resolution = None
    if mpp is not None:
        if not (mpp > 0 and math.isfinite(mpp)):
            raise InputError(f"microns per pixel must be positive, got {mpp}", path)
        metadata.update(
            PhysicalSizeX=float(mpp), PhysicalSizeY=float(mpp), PhysicalSizeXUnit="µm", PhysicalSizeYUnit="µm"
        )
        resolution = (1e4 / mpp, 1e4 / mpp)
    dest = Path(path)
    with atomic_write_path(dest) as tmp:
        big = image.nbytes > 2**31
        with tifffile.TiffWriter(tmp, bigtiff=big, ome=True) as tif:
            tif.write(
                image,
                subifds=n_levels - 1,
                metadata=metadata,
                resolution=resolution,
                resolutionunit="CENTIMETER" if resolution else None,
                **options,
            )
            level = image
            for i in range(1, n_levels):
                level = downsample_2x(level)
                res = (resolution[0] / 2**i, resolution[1] / 2**i) if resolution else None
                tif.write(
                    level,
                    subfiletype=1,
                    metadata=None,
                    resolution=res,
                    resolutionunit="CENTIMETER" if res else None,
                    **options,
                )
    return dest
