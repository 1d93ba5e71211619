"""Tissue tiles for self-supervised pretraining: random tile centres on each slide's tissue, read once.

Slides are image files (anything :func:`~napari_mclstexp.io.wsi.open_slide` reads) or ``.h5ad``
samples whose ``source_image_path`` names their image (the sample's µm/px is used when the image has
none).  Tiles cover the crop a spot patch covers in training (``crop_px(patch_px, patch_um, mpp)``) and
are stored at ``store_px`` so random resized crops keep detail.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.patches import crop_px, iter_extract_patches
from ..errors import InputError, MissingInputError
from ..io.wsi import open_slide
from ..predict.tissue import slide_tissue_mask, tile_tissue_fraction
from ..progress import CancelToken, Progress, ProgressGen
from ..sample import image_path, microns_per_pixel

__all__ = ["SlideSource", "iter_collect_tiles", "resolve_slides", "tissue_tile_centres"]

#: Suffixes read as AnnData samples (their image is used); everything else is opened as an image.
SAMPLE_SUFFIXES = (".h5ad",)


@dataclass(frozen=True)
class SlideSource:
    """An image to draw tiles from and its µm/px when a sample knows it (``None``: the image's own)."""

    image: Path
    mpp: float | None = None


def resolve_slides(items: Sequence[str | os.PathLike | Any]) -> list[SlideSource]:
    """Images behind image paths, ``.h5ad`` paths or AnnData samples.

    Raises
    ------
    MissingInputError
        A path that does not exist, or a sample whose image file is missing.
    InputError
        No slides, or a sample without an image.
    """
    from ..io.h5ad import read_sample

    if not items:
        raise InputError("no slides given to pretrain on")
    out = []
    for item in items:
        adata, where = (item, None) if hasattr(item, "uns") else (None, Path(item).expanduser())
        if where is not None:
            if not where.exists():
                raise MissingInputError("slide not found", where)
            if where.suffix.lower() not in SAMPLE_SUFFIXES:
                out.append(SlideSource(where))
                continue
            adata = read_sample(where)
        img = image_path(adata)
        if img is None:
            raise InputError("the sample names no image (uns['spatial'][...]['metadata']['source_image_path'])", where)
        if not img.is_file():
            raise MissingInputError("the sample's image was not found", img)
        out.append(SlideSource(img, microns_per_pixel(adata)))
    return out


def tissue_tile_centres(
    mask: np.ndarray, scale: float, n: int, size_px: int, rng: np.random.Generator, *, min_tissue: float = 0.5
) -> np.ndarray:
    """Up to ``n`` random tile centres (full-res px, (x, y)) whose tile is ≥ ``min_tissue`` tissue.

    Centres are drawn uniformly over the mask's tissue pixels (with sub-pixel jitter), 4× oversampled,
    and those whose ``size_px`` tile holds too little tissue are dropped.
    """
    ys, xs = np.nonzero(mask)
    if len(xs) == 0 or n <= 0:
        return np.zeros((0, 2))
    pick = rng.integers(0, len(xs), size=4 * n)
    jitter = rng.random((4 * n, 2))
    xy = (np.stack([xs[pick], ys[pick]], axis=1) + jitter) / scale
    keep = tile_tissue_fraction(mask, scale, xy, size_px) >= min_tissue
    return xy[keep][:n]


def iter_collect_tiles(
    slides: Sequence[str | os.PathLike | Any],
    *,
    tiles_per_slide: int = 1000,
    patch_px: int = 224,
    patch_um: float = 0.0,
    store_px: int = 96,
    min_tissue: float = 0.5,
    seed: int = 0,
    cancel: CancelToken | None = None,
) -> ProgressGen[np.ndarray]:
    """Random tissue tiles of every slide, as one uint8 array.

    Parameters
    ----------
    slides
        Image paths, ``.h5ad`` sample paths or AnnData samples with an image.
    tiles_per_slide
        Tiles drawn per slide (fewer when the tissue is small).
    patch_px, patch_um
        Tile edge: ``patch_um`` µm at the slide's µm/px when both are known, else ``patch_px`` full-res px.
    store_px
        Edge of the stored tiles (px, antialiased resize).
    min_tissue
        Least tissue fraction of a tile (tissue from the slide's thumbnail mask).
    seed
        Seeds the tile positions.

    Yields
    ------
    Progress
        Stage ``"tiles"``: one per slide and per block of patches read.

    Returns
    -------
    numpy.ndarray
        uint8 (N, store_px, store_px, 3).

    Raises
    ------
    InputError
        A slide with no tissue found.
    """
    sources = resolve_slides(slides)
    rng = np.random.default_rng(seed)
    parts = []
    for i, src in enumerate(sources):
        if cancel is not None:
            cancel.raise_if_cancelled()
        yield Progress("tiles", i, len(sources), message=f"finding tissue in {src.image.name}")
        with open_slide(src.image) as slide:
            size = crop_px(patch_px, patch_um, src.mpp or slide.mpp)
            mask, scale = slide_tissue_mask(slide)
            xy = tissue_tile_centres(mask, scale, tiles_per_slide, size, rng, min_tissue=min_tissue)
            if len(xy) == 0:
                raise InputError(f"no tissue tile of {size} px with ≥ {min_tissue:.0%} tissue found", src.image)
            gen = iter_extract_patches(slide, xy, size, store_px, cancel=cancel)
            while True:
                try:
                    event = next(gen)
                except StopIteration as stop:
                    parts.append(stop.value)
                    break
                yield Progress(
                    "tiles", i, len(sources), message=f"{event.step}/{event.total} tiles of {src.image.name}"
                )
    yield Progress("tiles", len(sources), len(sources), message=f"{sum(len(p) for p in parts)} tiles")
    return np.concatenate(parts)
