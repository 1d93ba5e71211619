"""Synthetic Visium HD Space Ranger folders (the real ``binned_outputs`` layout), for tests and benchmarks.

The 2 µm grid is placed on the full-resolution image by :class:`HDGeometry` (origin, µm per pixel, a
rotation), so a test can compute by hand where any bin's centre must land.  Regions of a smooth random
map switch on their marker genes (as :mod:`napari_mclstexp.synthetic`); when an H&E image is written
it is rendered from the same map, so expression is predictable from the image.  Coarser bins hold the
exact sums of the finest bins written, as Space Ranger's do.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from scipy import sparse

from ..io.visium_hd import aggregate_bins, bin_barcode, bin_folder_name
from .slides import region_map, render_he


@dataclass(frozen=True)
class HDGeometry:
    """Where the 2 µm grid lies on the full-resolution image.

    Attributes
    ----------
    mpp
        µm per full-resolution pixel.
    origin_xy
        Centre (x, y) px of 2 µm bin (row 0, col 0).
    angle_deg
        Rotation of the grid (columns run along x rotated by this angle, counter-clockwise in x, y).
    """

    mpp: float = 0.5
    origin_xy: tuple[float, float] = (40.0, 30.0)
    angle_deg: float = 0.0

    def centres(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(N, 2) full-res (x, y) px of (possibly fractional) 2 µm grid positions."""
        step = 2.0 / self.mpp
        a = math.radians(self.angle_deg)
        rows, cols = np.asarray(rows, np.float64), np.asarray(cols, np.float64)
        x = self.origin_xy[0] + step * (cols * math.cos(a) - rows * math.sin(a))
        y = self.origin_xy[1] + step * (cols * math.sin(a) + rows * math.cos(a))
        return np.stack([x, y], 1)

    def bin_centres(self, bin_um: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(N, 2) px centres of ``bin_um`` bins at their own grid indices (block of 2 µm bins)."""
        f = bin_um // 2
        c = (f - 1) / 2.0
        return self.centres(np.asarray(rows) * f + c, np.asarray(cols) * f + c)


def write_10x_h5(
    path: Path, X: sparse.csr_matrix, barcodes: list[str], genes: list[str], library_id: str = "synthetic"
) -> Path:
    """Write bins × genes counts as a Space Ranger v3 ``filtered_feature_bc_matrix.h5``."""
    X = sparse.csr_matrix(X)  # bins × genes CSR == genes × bins CSC, the 10x layout
    kw = {"compression": "gzip", "compression_opts": 1} if X.nnz > 1000 else {}
    with h5py.File(path, "w") as f:
        f.attrs["library_ids"] = np.array([library_id.encode()])
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=np.array(barcodes, dtype="S"), **kw)
        g.create_dataset("data", data=X.data.astype(np.int32), **kw)
        g.create_dataset("indices", data=X.indices.astype(np.int64), **kw)
        g.create_dataset("indptr", data=X.indptr.astype(np.int64))
        g["shape"] = np.array([X.shape[1], X.shape[0]], dtype=np.int32)
        ft = g.create_group("features")
        ft["name"] = np.array(genes, dtype="S")
        ft["id"] = np.array([f"ENSSYN{i:06d}" for i in range(len(genes))], dtype="S")
        ft["feature_type"] = np.array(["Gene Expression"] * len(genes), dtype="S")
    return path


def _gene_means(n_genes: int, n_regions: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Per-region mean counts of an 8 µm bin: each region triples its own 3 marker genes."""
    means = np.tile(rng.gamma(2.0, 0.25, size=n_genes), (n_regions, 1))
    names = []
    for g in range(n_genes):
        region = g // 3
        if region < n_regions:
            means[region, g] *= 6.0
            names.append(f"MARK{region}_{g % 3}")
        else:
            names.append(f"NOISE{g}")
    return means, names


def write_visium_hd(
    root: str | os.PathLike,
    *,
    n_rows: int = 48,
    n_cols: int = 64,
    bins: tuple[int, ...] = (2, 8, 16),
    n_genes: int = 12,
    n_regions: int = 3,
    geometry: HDGeometry = HDGeometry(),
    tissue_cover: float = 0.8,
    image: bool = False,
    image_margin_px: int = 40,
    seed: int = 0,
    chunk_rows: int = 64,
) -> Path:
    """Write ``root/outs/binned_outputs/square_XXXum/`` folders of a synthetic Visium HD section.

    Parameters
    ----------
    root
        Sample folder (created); the Space Ranger output lands in ``root/outs``.
    n_rows, n_cols
        Grid of the finest bin size written, in bins (e.g. 836 × 836 8 µm bins ≈ 6.7 mm, 700,000 bins).
    bins
        Bin sizes to write (µm, multiples of 2); the coarser are exact sums of the finest.
    n_genes, n_regions
        Panel size (``MARK<r>_<i>`` markers, ``NOISE<g>`` genes) and number of tissue regions.
    geometry
        Grid placement on the image (µm/px, origin, rotation).
    tissue_cover
        Fraction of the capture area under tissue (an ellipse); bins outside have ``in_tissue`` 0 and
        are absent from the filtered matrix.
    image
        Also write the full-resolution H&E ``root/fullres.tif`` (regions rendered as in the counts) and
        record it in ``root/_invocation`` as Space Ranger does.
    seed
        Random seed; the folder is deterministic.
    chunk_rows
        Grid rows simulated at a time (bounds memory for large sections).

    Returns
    -------
    pathlib.Path
        ``root/outs``.
    """
    rng = np.random.default_rng(seed)
    bins = tuple(sorted(int(b) for b in bins))
    fine = bins[0]
    if any(b % 2 or b % fine for b in bins):
        raise ValueError(f"bin sizes must be multiples of 2 µm and of the finest one, got {bins}")
    root = Path(root)
    outs = root / "outs"
    f_fine = fine // 2
    # region map on a coarse µm lattice (one cell per 8 µm), shared by counts and image
    span_um = (n_rows * fine, n_cols * fine)
    cell_um = 8.0
    lattice = region_map(
        (max(4, int(span_um[0] / cell_um)), max(4, int(span_um[1] / cell_um))),
        n_regions,
        rng,
        smooth_px=max(4.0, 150.0 / cell_um),
    )
    means, genes = _gene_means(n_genes, n_regions, rng)
    rr, cc = np.indices((n_rows, n_cols)).reshape(2, -1)
    # tissue: ellipse in grid units covering tissue_cover of the area
    ny, nx = (rr + 0.5) / n_rows - 0.5, (cc + 0.5) / n_cols - 0.5
    radius = math.sqrt(tissue_cover / math.pi)
    in_tissue = (nx**2 + ny**2) <= radius**2
    labels = lattice[
        np.minimum((rr * fine / cell_um).astype(int), lattice.shape[0] - 1),
        np.minimum((cc * fine / cell_um).astype(int), lattice.shape[1] - 1),
    ]
    area = (fine / 8.0) ** 2
    parts = []
    for start in range(0, n_rows * n_cols, chunk_rows * n_cols):
        sl = slice(start, start + chunk_rows * n_cols)
        lam = means[labels[sl]] * area * rng.lognormal(0, 0.3, size=(len(labels[sl]), 1))
        counts = rng.poisson(lam).astype(np.int32)
        counts[~in_tissue[sl]] = 0
        parts.append(sparse.csr_matrix(counts))
    X_fine = sparse.vstack(parts).tocsr()

    image_path = None
    if image:
        image_path = _write_image(
            root, lattice, cell_um, geometry, n_rows * f_fine, n_cols * f_fine, image_margin_px, rng
        )
        (root / "_invocation").write_text(
            f'@include "spatial_pipeline.mro"\ncall SPATIAL_RNA_COUNTER(\n'
            f'    tissue_image_paths = ["{image_path.resolve()}"],\n)\n'
        )
    for b in bins:
        f = b // fine
        if f == 1:
            X, rows, cols = X_fine, rr, cc
            tissue = in_tissue
        else:
            X, rows, cols = aggregate_bins(X_fine, rr, cc, f)
            t_idx = np.unique((rr[in_tissue] // f) * (int(cols.max()) + 1) + cc[in_tissue] // f)
            tissue = np.isin(rows * (int(cols.max()) + 1) + cols, t_idx)
        _write_square(
            outs / "binned_outputs" / bin_folder_name(b), b, X, rows, cols, tissue, genes, geometry, root.name
        )
    return outs


def _write_square(
    square: Path,
    b: int,
    X: sparse.csr_matrix,
    rows: np.ndarray,
    cols: np.ndarray,
    tissue: np.ndarray,
    genes: list[str],
    geometry: HDGeometry,
    library_id: str,
) -> None:
    """One ``square_XXXum`` folder: filtered matrix (in-tissue bins), positions of all bins, scale factors."""
    (square / "spatial").mkdir(parents=True, exist_ok=True)
    barcodes = np.asarray(bin_barcode(b, rows, cols), dtype=object)
    xy = geometry.bin_centres(b, rows, cols)
    pd.DataFrame(
        {
            "barcode": barcodes,
            "in_tissue": tissue.astype(np.int32),
            "array_row": rows.astype(np.int32),
            "array_col": cols.astype(np.int32),
            "pxl_row_in_fullres": xy[:, 1],
            "pxl_col_in_fullres": xy[:, 0],
        }
    ).to_parquet(square / "spatial" / "tissue_positions.parquet", index=False)
    write_10x_h5(square / "filtered_feature_bc_matrix.h5", X[tissue], list(barcodes[tissue]), genes, library_id)
    mpp = geometry.mpp
    (square / "spatial" / "scalefactors_json.json").write_text(
        json.dumps(
            {
                "spot_diameter_fullres": b / mpp,
                "bin_size_um": float(b),
                "microns_per_pixel": mpp,
                "tissue_hires_scalef": 0.2,
                "tissue_lowres_scalef": 0.02,
                "fiducial_diameter_fullres": 10 * b / mpp,
                "regist_target_img_scalef": 0.2,
            }
        )
    )


def _write_image(
    root: Path,
    lattice: np.ndarray,
    cell_um: float,
    geometry: HDGeometry,
    rows_2um: int,
    cols_2um: int,
    margin_px: int,
    rng: np.random.Generator,
) -> Path:
    """Render the H&E of the capture area (+ margin) so that each pixel shows the region of its grid place."""
    from ..io.wsi_write import write_pyramid_tiff

    corners = geometry.centres(np.array([0, 0, rows_2um, rows_2um]), np.array([0, cols_2um, 0, cols_2um]))
    w = int(np.ceil(corners[:, 0].max())) + margin_px
    h = int(np.ceil(corners[:, 1].max())) + margin_px
    ys, xs = np.mgrid[0:h, 0:w]
    # invert the geometry: pixel → fractional 2 µm grid position → region lattice cell
    step, a = 2.0 / geometry.mpp, math.radians(geometry.angle_deg)
    dx, dy = (xs - geometry.origin_xy[0]) / step, (ys - geometry.origin_xy[1]) / step
    col = dx * math.cos(a) + dy * math.sin(a)
    row = -dx * math.sin(a) + dy * math.cos(a)
    li = np.clip((row * 2.0 / cell_um).astype(int), 0, lattice.shape[0] - 1)
    lj = np.clip((col * 2.0 / cell_um).astype(int), 0, lattice.shape[1] - 1)
    he = render_he(lattice[li, lj], rng)
    path = root / "fullres.tif"
    write_pyramid_tiff(path, he, mpp=geometry.mpp, tile=256, compression="zlib")
    return path
