"""Synthetic H&E-like slides with learnable structure, for tests and the offline demo.

Tissue regions differ in stain colour and nuclear density/size; each region switches on its own marker
genes, so expression is predictable from the image.  Everything is seeded and deterministic.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage, sparse

#: Stain colours (RGB) of the regions: eosin-rich stroma, dense tumour, immune, fat/background-like.
REGION_COLOURS = np.array(
    [[232, 160, 200], [160, 90, 170], [200, 120, 190], [240, 205, 225], [185, 140, 210], [215, 110, 150]],
    dtype=float,
)
#: Nuclei per 1,000 px² and nucleus radius (px) per region.
REGION_NUCLEI = np.array([[0.6, 2.0], [3.0, 3.0], [5.0, 1.6], [0.2, 2.0], [1.8, 2.5], [1.2, 3.5]])


def region_map(shape: tuple[int, int], n_regions: int, rng: np.random.Generator, smooth_px: float) -> np.ndarray:
    """Smooth random partition of an image into ``n_regions`` labels (int8, shape ``shape``)."""
    h, w = shape
    small = (max(4, int(h / smooth_px)), max(4, int(w / smooth_px)))
    fields = rng.normal(size=(n_regions, *small))
    fields = np.stack([ndimage.gaussian_filter(f, 1.0) for f in fields])
    zoom = (1, h / small[0], w / small[1])
    big = ndimage.zoom(fields, zoom, order=1)[:, :h, :w]
    return np.argmax(big, axis=0).astype(np.int8)


def render_he(regions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render an H&E-like RGB uint8 image from a region map."""
    h, w = regions.shape
    n = int(regions.max()) + 1
    colours = REGION_COLOURS[np.arange(n) % len(REGION_COLOURS)]
    img = colours[regions] + rng.normal(0, 8, size=(h, w, 3))
    nuclei = np.zeros((h, w), dtype=float)
    for r in range(n):
        density, radius = REGION_NUCLEI[r % len(REGION_NUCLEI)]
        count = rng.poisson(density * h * w / 1000.0 * (regions == r).mean())
        ys, xs = rng.integers(0, h, count), rng.integers(0, w, count)
        keep = regions[ys, xs] == r
        dots = np.zeros((h, w), dtype=float)
        dots[ys[keep], xs[keep]] = 1.0
        nuclei += ndimage.gaussian_filter(dots, radius) * (2 * np.pi * radius**2)
    nuclei = np.clip(nuclei, 0, 1)[..., None]
    haematoxylin = np.array([70.0, 40.0, 120.0])
    img = img * (1 - nuclei) + haematoxylin * nuclei
    return np.clip(img, 0, 255).astype(np.uint8)


def hex_grid(shape: tuple[int, int], spacing_px: float, margin_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Visium-like hexagonal spot grid: returns ``xy`` (N, 2) pixels and ``(array_col, array_row)``."""
    h, w = shape
    dy = spacing_px * np.sqrt(3) / 2
    rows = int((h - 2 * margin_px) // dy) + 1
    cols = int((w - 2 * margin_px - spacing_px / 2) // spacing_px) + 1
    xy, grid = [], []
    for r in range(rows):
        for c in range(cols):
            x = margin_px + c * spacing_px + (spacing_px / 2 if r % 2 else 0.0)
            y = margin_px + r * dy
            xy.append((x, y))
            grid.append((2 * c + (r % 2), r))
    return np.asarray(xy, dtype=float), np.asarray(grid, dtype=int)


def simulate_counts(
    labels: np.ndarray, n_genes: int, n_regions: int, rng: np.random.Generator, n_markers_per_region: int = 3
) -> tuple[np.ndarray, list[str]]:
    """Poisson counts where each region up-regulates its own marker genes; the rest are noise genes."""
    n = len(labels)
    base = rng.gamma(2.0, 2.0, size=n_genes)
    means = np.tile(base, (n_regions, 1))
    names = []
    for g in range(n_genes):
        region = g // n_markers_per_region
        if region < n_regions:
            means[region, g] *= 8.0
            names.append(f"MARK{region}_{g % n_markers_per_region}")
        else:
            names.append(f"NOISE{g}")
    lib = rng.lognormal(0, 0.3, size=n)
    return rng.poisson(means[labels] * lib[:, None]), names


def make_synthetic_sample(
    out_dir: str | os.PathLike,
    *,
    image_px: tuple[int, int] = (512, 512),
    spot_spacing_px: float = 40.0,
    n_genes: int = 24,
    n_regions: int = 4,
    seed: int = 0,
    section: str = "SYN1",
    patient: str = "P1",
    image_format: str = "png",
    mpp: float = 1.0,
):
    """Write a synthetic slide image into ``out_dir`` and return its AnnData sample.

    Parameters
    ----------
    out_dir
        Folder for the image file (``<section>.png`` or ``<section>.tif``).
    image_px
        Image (height, width) in pixels.
    spot_spacing_px
        Centre-to-centre spot distance in pixels; spot diameter is 0.55 × spacing (Visium ratio).
    n_genes, n_regions, seed
        Panel size, number of tissue regions, random seed.
    image_format
        ``"png"`` or ``"tif"`` (plain TIFF with resolution tags).
    mpp
        Micrometres per pixel recorded in the sample.

    Returns
    -------
    anndata.AnnData
        Following the project's sample conventions, with ``obs['annotation']`` the true region.
    """
    import anndata as ad

    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    regions = region_map(image_px, n_regions, rng, smooth_px=max(image_px) / 4)
    image = render_he(regions, rng)
    xy, grid = hex_grid(image_px, spot_spacing_px, margin_px=spot_spacing_px / 2)
    labels = regions[xy[:, 1].astype(int), xy[:, 0].astype(int)].astype(int)
    counts, genes = simulate_counts(labels, n_genes, n_regions, rng)
    path = out / f"{section}.{image_format}"
    if image_format == "png":
        from PIL import Image

        Image.fromarray(image).save(path)
    else:
        import tifffile

        tifffile.imwrite(path, image, photometric="rgb", resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
    obs = pd.DataFrame(
        {
            "array_col": grid[:, 0],
            "array_row": grid[:, 1],
            "section": section,
            "patient": patient,
            "annotation": pd.Categorical([f"region{r}" for r in labels]),
        },
        index=[f"{section}_{c}x{r}" for c, r in grid],
    )
    adata = ad.AnnData(X=sparse.csr_matrix(counts.astype(np.float32)), obs=obs, var=pd.DataFrame(index=genes))
    adata.obsm["spatial"] = xy
    adata.uns["spatial"] = {
        section: {
            "scalefactors": {"spot_diameter_fullres": 0.55 * spot_spacing_px, "tissue_hires_scalef": 1.0},
            "metadata": {"source_image_path": str(path.resolve()), "microns_per_pixel": mpp},
        }
    }
    return adata
