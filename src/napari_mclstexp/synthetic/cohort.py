"""A small cohort of synthetic H&E-only slides (pyramidal OME-TIFFs), for cohort prediction tests and benchmarks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .slides import region_map, render_he


def write_cohort_slides(
    folder: str | os.PathLike,
    n: int,
    *,
    size_px: tuple[int, int] = (512, 512),
    mpp: float = 1.0,
    n_regions: int = 3,
    seed: int = 0,
) -> list[Path]:
    """Write ``n`` synthetic slides ``slide_000.ome.tif`` … into ``folder`` (created), tissue edge to edge.

    Parameters
    ----------
    size_px
        (height, width) of each slide in px.
    mpp
        µm per pixel recorded in each file.
    n_regions
        Tissue regions (the first three stain colours: the fourth is pale, fat-like, and tissue
        detection rightly skips it).
    seed
        Slide ``i`` uses seed ``seed + i``: the cohort is deterministic.

    Returns
    -------
    list of pathlib.Path
        The slide files, in order.
    """
    from ..io.wsi_write import write_pyramid_tiff

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        rng = np.random.default_rng(seed + i)
        he = render_he(region_map(size_px, n_regions, rng, smooth_px=120.0), rng)
        paths.append(write_pyramid_tiff(folder / f"slide_{i:03d}.ome.tif", he, mpp=mpp, tile=256, compression="zlib"))
    return paths
