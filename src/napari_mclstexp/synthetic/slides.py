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


# --- the offline demo slide (sample_data/) -------------------------------------------------------

#: Names of the demo slide's tissue regions, in label order (colours from :data:`REGION_COLOURS`).
DEMO_REGION_NAMES = ("stroma", "tumour", "immune", "adipose", "epithelium")
#: Background (glass) colour of the demo slide, RGB.
GLASS_COLOUR = np.array([243.0, 240.0, 244.0])


def balanced_region_map(
    shape: tuple[int, int], n_regions: int, rng: np.random.Generator, blob_px: float, step: int = 4
) -> np.ndarray:
    """Smooth random partition into ``n_regions`` labels of roughly equal area.

    Parameters
    ----------
    shape
        (height, width) of the map in pixels.
    n_regions
        Number of labels.
    rng
        Random generator (the only source of randomness).
    blob_px
        Typical size of one region blob in pixels.
    step
        The partition is computed on a grid ``step`` px apart and replicated (boundaries are
        ``step`` px staircases, invisible at slide scale, and this is 16× cheaper).

    Returns
    -------
    numpy.ndarray
        int8 labels, shape ``shape``.
    """
    h, w = shape
    low = (-(-h // step), -(-w // step))
    coarse = (max(3, round(2 * h / blob_px)), max(3, round(2 * w / blob_px)))
    fields = ndimage.gaussian_filter(rng.normal(size=(n_regions, *coarse)), (0, 0.8, 0.8))
    fields = np.stack([ndimage.zoom(f, (low[0] / coarse[0], low[1] / coarse[1]), order=3) for f in fields])
    fields = fields[:, : low[0], : low[1]]
    fields /= fields.std(axis=(1, 2), keepdims=True)
    offsets = np.zeros((n_regions, 1, 1))
    for _ in range(60):  # nudge offsets until each label covers about 1 / n_regions of the map
        frac = np.bincount((fields + offsets).argmax(0).ravel(), minlength=n_regions) / fields[0].size
        offsets[:, 0, 0] += 0.5 * (1.0 / n_regions - frac)
    labels = (fields + offsets).argmax(0).astype(np.int8)
    return np.repeat(np.repeat(labels, step, axis=0), step, axis=1)[:h, :w]


def tissue_mask(shape: tuple[int, int], rng: np.random.Generator, cover: float = 0.8) -> np.ndarray:
    """Irregular tissue outline (bool, ``True`` = tissue) covering about ``cover`` of a centred ellipse."""
    h, w = shape
    yy, xx = np.mgrid[0:h:8, 0:w:8]
    r = np.hypot((yy - h / 2) / (0.5 * h), (xx - w / 2) / (0.5 * w))
    wobble = ndimage.zoom(
        ndimage.gaussian_filter(rng.normal(size=(8, 8)), 1.0), (yy.shape[0] / 8, yy.shape[1] / 8), order=3
    )
    wobble = wobble[: yy.shape[0], : yy.shape[1]] / max(np.abs(wobble).max(), 1e-9)
    small = r + 0.12 * wobble < np.sqrt(cover)
    return np.repeat(np.repeat(small, 8, axis=0), 8, axis=1)[:h, :w]


def spot_density(nuclei: np.ndarray, xy: np.ndarray, radius_px: float) -> np.ndarray:
    """Mean nuclear coverage (0–1) inside a disc of ``radius_px`` around each ``(x, y)`` spot centre."""
    r = int(np.ceil(radius_px))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = (dx**2 + dy**2) <= radius_px**2
    h, w = nuclei.shape
    out = np.empty(len(xy))
    for i, (x, y) in enumerate(np.floor(xy).astype(int)):
        ys, xs = np.clip(y + dy[disc], 0, h - 1), np.clip(x + dx[disc], 0, w - 1)
        out[i] = nuclei[ys, xs].mean()
    return out


def render_nuclei(regions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Nuclear coverage map in [0, 1] (float32): density and nucleus radius depend on the region."""
    h, w = regions.shape
    nuclei = np.zeros((h, w), dtype=np.float32)
    for r in range(int(regions.max()) + 1):
        density, radius = REGION_NUCLEI[r % len(REGION_NUCLEI)]
        count = rng.poisson(density * h * w / 1000.0 * (regions == r).mean())
        ys, xs = rng.integers(0, h, count), rng.integers(0, w, count)
        keep = regions[ys, xs] == r
        dots = np.zeros((h, w), dtype=np.float32)
        dots[ys[keep], xs[keep]] = 1.0
        nuclei += ndimage.gaussian_filter(dots, radius) * np.float32(2 * np.pi * radius**2)
    return np.clip(nuclei, 0, 1)


def render_demo_he(
    regions: np.ndarray, nuclei: np.ndarray, mask: np.ndarray, rng: np.random.Generator, noise_sd: float = 6.0
) -> np.ndarray:
    """RGB uint8 H&E-like image: stain colour per region, haematoxylin nuclei, glass outside ``mask``."""
    h, w = regions.shape
    colours = REGION_COLOURS[np.arange(int(regions.max()) + 1) % len(REGION_COLOURS)].astype(np.float32)
    img = colours[regions]
    img += rng.normal(0, noise_sd, size=(h, w, 3)).astype(np.float32)
    haematoxylin = np.array([70.0, 40.0, 120.0], dtype=np.float32)
    img = img * (1 - nuclei[..., None]) + haematoxylin * nuclei[..., None]
    img[~mask] = GLASS_COLOUR + rng.normal(0, 2.0, size=(int((~mask).sum()), 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def demo_counts(
    labels: np.ndarray,
    density: np.ndarray,
    rng: np.random.Generator,
    *,
    n_regions: int,
    n_markers: int = 4,
    n_noise: int = 12,
) -> tuple[np.ndarray, list[str]]:
    """Poisson counts for the demo slide.

    Each region switches on ``n_markers`` marker genes (``<REGION>_M<i>``, 8× the baseline);
    ``NUCDENS`` follows the spot's nuclear coverage (texture); ``NOISE_<j>`` genes ignore the image.

    Returns
    -------
    counts : numpy.ndarray
        int64 (N, G).
    genes : list of str
        Gene names, in column order.
    """
    n = len(labels)
    names = [f"{DEMO_REGION_NAMES[r].upper()}_M{i + 1}" for r in range(n_regions) for i in range(n_markers)]
    names += ["NUCDENS"] + [f"NOISE_{j + 1}" for j in range(n_noise)]
    base = rng.gamma(2.0, 2.0, size=len(names)) + 1.0
    means = np.tile(base, (n, 1))
    for r in range(n_regions):
        cols = slice(r * n_markers, (r + 1) * n_markers)
        means[labels == r, cols] *= 8.0
    dens_col = n_regions * n_markers
    d = (density - density.min()) / max(np.ptp(density), 1e-9)
    means[:, dens_col] = base[dens_col] * (1.0 + 12.0 * d)
    lib = rng.lognormal(0, 0.25, size=n)
    return rng.poisson(means * lib[:, None]), names


def make_demo_slide(
    *,
    image_px: tuple[int, int] = (4096, 4096),
    spot_spacing_px: float = 100.0,
    n_regions: int = 5,
    mpp: float = 1.0,
    seed: int = 1,
    section: str = "DEMO1",
    patient: str = "DEMO",
    image_name: str = "demo_slide.ome.tif",
    train_fraction: float = 2 / 3,
):
    """Build the offline demo slide in memory: an H&E-like image and its Visium-like sample.

    Parameters
    ----------
    image_px
        Slide (height, width) in pixels.
    spot_spacing_px
        Centre-to-centre spot distance (px); the spot diameter is 0.55 × spacing (Visium: 100 µm
        spacing, 55 µm spots at ``mpp = 1``).
    n_regions
        Tissue regions (at most ``len(DEMO_REGION_NAMES)``).
    mpp
        Micrometres per pixel.
    seed
        Random seed (everything is deterministic given it).
    section, patient
        Names stored in ``obs``.
    image_name
        Relative image path stored as ``metadata['source_image_path']`` (resolved by the loader).
    train_fraction
        Spots with ``x < train_fraction × width`` get ``obs['demo_split'] = "train"``, the rest
        ``"test"``.

    Returns
    -------
    image : numpy.ndarray
        (H, W, 3) uint8 RGB.
    adata : anndata.AnnData
        Raw counts, ``obsm['spatial']`` (x, y) px, ``obs['annotation']`` (region name),
        ``obs['demo_split']``, and ``uns['spatial'][section]`` with a *relative* image path.
    """
    import anndata as ad

    if not 1 <= n_regions <= len(DEMO_REGION_NAMES):
        raise ValueError(f"n_regions must be in 1..{len(DEMO_REGION_NAMES)}")
    rng = np.random.default_rng(seed)
    h, w = image_px
    regions = balanced_region_map(image_px, n_regions, rng, blob_px=max(image_px) / 6)
    mask = tissue_mask(image_px, rng)
    nuclei = render_nuclei(regions, rng)
    image = render_demo_he(regions, nuclei, mask, rng)
    xy, grid = hex_grid(image_px, spot_spacing_px, margin_px=spot_spacing_px / 2)
    inside = mask[xy[:, 1].astype(int), xy[:, 0].astype(int)]
    xy, grid = xy[inside], grid[inside]
    labels = regions[xy[:, 1].astype(int), xy[:, 0].astype(int)].astype(int)
    density = spot_density(nuclei, xy, radius_px=0.275 * spot_spacing_px)
    counts, genes = demo_counts(labels, density, rng, n_regions=n_regions)
    names = np.asarray(DEMO_REGION_NAMES[:n_regions])
    obs = pd.DataFrame(
        {
            "array_col": grid[:, 0],
            "array_row": grid[:, 1],
            "section": section,
            "patient": patient,
            "annotation": pd.Categorical(names[labels], categories=list(names)),
            "demo_split": pd.Categorical(
                np.where(xy[:, 0] < train_fraction * w, "train", "test"), categories=["train", "test"]
            ),
        },
        index=[f"{section}_{c}x{r}" for c, r in grid],
    )
    adata = ad.AnnData(X=sparse.csr_matrix(counts.astype(np.float32)), obs=obs, var=pd.DataFrame(index=genes))
    adata.obsm["spatial"] = xy
    adata.uns["spatial"] = {
        section: {
            "scalefactors": {"spot_diameter_fullres": 0.55 * spot_spacing_px, "tissue_hires_scalef": 1.0},
            "metadata": {"source_image_path": image_name, "microns_per_pixel": float(mpp)},
        }
    }
    return image, adata
