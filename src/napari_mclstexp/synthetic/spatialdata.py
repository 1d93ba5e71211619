"""A synthetic SpatialData store (image + spot circles + counts table) whose frames differ on purpose:
the image is in pixels with a µm scale to ``global``, the spots are stored in µm — so a reader must use
the store's transformations to put the spots on the image."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .slides import hex_grid, region_map, render_he, simulate_counts


def write_synthetic_spatialdata(
    path: str | os.PathLike,
    *,
    image_px: tuple[int, int] = (400, 480),
    mpp: float = 0.5,
    spacing_px: float = 60.0,
    n_genes: int = 8,
    seed: int = 0,
) -> tuple[Path, np.ndarray]:
    """Write the store; returns ``(path, spot centres (N, 2) in image px (x, y))`` for checking readers.

    Elements: image ``he`` (``c, y, x`` uint8, ``Scale(mpp)`` to ``global``), shapes ``spots`` (circles
    in µm, Identity to ``global``, radius 27.5 µm), table ``table`` (raw counts annotating ``spots``).
    """
    import anndata as ad
    import spatialdata as sd
    from spatialdata.models import Image2DModel, ShapesModel, TableModel
    from spatialdata.transformations import Identity, Scale

    rng = np.random.default_rng(seed)
    regions = region_map(image_px, 3, rng, smooth_px=100.0)
    he = render_he(regions, rng)
    xy, _grid = hex_grid(image_px, spacing_px, spacing_px)
    labels = regions[xy[:, 1].astype(int), xy[:, 0].astype(int)]
    counts, genes = simulate_counts(labels, n_genes, 3, rng)
    image = Image2DModel.parse(
        he.transpose(2, 0, 1), dims=("c", "y", "x"), transformations={"global": Scale([mpp, mpp], axes=("x", "y"))}
    )
    um = xy * mpp
    shapes = ShapesModel.parse(
        um,
        geometry=0,
        radius=np.full(len(um), 27.5),
        index=np.arange(len(um)) + 100,
        transformations={"global": Identity()},
    )
    obs = pd.DataFrame(
        {"region": pd.Categorical(["spots"] * len(um)), "cell": np.arange(len(um)) + 100},
        index=[f"spot{i}" for i in range(len(um))],
    )
    table = TableModel.parse(
        ad.AnnData(counts.astype(np.float32), obs=obs, var=pd.DataFrame(index=genes)),
        region="spots",
        region_key="region",
        instance_key="cell",
    )
    path = Path(path)
    sd.SpatialData(images={"he": image}, shapes={"spots": shapes}, tables={"table": table}).write(path, overwrite=True)
    return path, xy
