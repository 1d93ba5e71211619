"""Reader for 10x Genomics Visium HD Space Ranger (≥ 3) output folders.

Layout read (``outs/``)::

    binned_outputs/square_002um/  filtered_feature_bc_matrix.h5
                                  spatial/tissue_positions.parquet
                                  spatial/scalefactors_json.json
                                  spatial/tissue_{hires,lowres}_image.png
    binned_outputs/square_008um/  ... (same files)
    binned_outputs/square_016um/  ...

A bin size Space Ranger wrote is read as is; any other multiple of 2 µm is made by summing the 2 µm
bins of each ``f × f`` block (``f = bin_um / 2``; coarse index = fine index // f, as Space Ranger bins).
Bin centres are full-resolution pixels (x = column, y = row).  The grid → pixel map is an affine
transform fitted by least squares to the positions table (``uns['bin_grid']``), which also places the
centre of an aggregated bin and lets a viewer draw the bins as a raster (one pixel per bin).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import InputError, MissingInputError, SpotMatchError
from ..sample import drop_spots_outside, spatial_uns, validate_sample
from .visium import _read_png, read_10x_h5

#: Bin sizes (µm) Space Ranger writes by default.
NATIVE_BINS_UM = (2, 8, 16)
_POSITION_COLUMNS = ["barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"]


def bin_folder_name(bin_um: int) -> str:
    """``square_008um`` for 8 µm."""
    return f"square_{int(bin_um):03d}um"


def bin_barcode(bin_um: int, rows: np.ndarray, cols: np.ndarray) -> list[str]:
    """Space Ranger's bin barcodes, e.g. ``s_008um_00012_00034-1`` (row 12, column 34)."""
    return [f"s_{int(bin_um):03d}um_{r:05d}_{c:05d}-1" for r, c in zip(rows.tolist(), cols.tolist(), strict=True)]


def find_binned_outputs(folder: str | os.PathLike) -> Path:
    """The ``binned_outputs`` folder of a Space Ranger HD run given ``<sample>``, ``outs`` or itself.

    Raises
    ------
    MissingInputError
        None found.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise MissingInputError("Visium HD folder not found", folder)
    for cand in (folder, folder / "binned_outputs", folder / "outs" / "binned_outputs"):
        if cand.is_dir() and any(cand.glob("square_*um")):
            return cand
    raise MissingInputError("not a Visium HD folder: no binned_outputs/square_XXXum/ sub-folders", folder)


def is_visium_hd_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a Space Ranger HD ``binned_outputs`` folder (itself, or one/two levels down)."""
    try:
        find_binned_outputs(path)
    except MissingInputError:
        return False
    return True


def available_bin_sizes(binned: Path) -> list[int]:
    """Bin sizes (µm) present as ``square_XXXum`` folders, ascending."""
    sizes = []
    for p in binned.glob("square_*um"):
        m = re.fullmatch(r"square_(\d+)um", p.name)
        if m and p.is_dir():
            sizes.append(int(m.group(1)))
    return sorted(sizes)


def read_bin_positions(square_dir: Path) -> tuple[pd.DataFrame, Path]:
    """Positions table of one bin size (``tissue_positions.parquet``, else ``tissue_positions.csv``)."""
    spatial = square_dir / "spatial"
    parquet, csv = spatial / "tissue_positions.parquet", spatial / "tissue_positions.csv"
    if not (parquet.is_file() or csv.is_file()):
        raise MissingInputError("no spatial/tissue_positions.parquet", square_dir)
    path = parquet if parquet.is_file() else csv
    try:
        table = pd.read_parquet(path) if path is parquet else pd.read_csv(path)
    except (OSError, ValueError) as err:  # pyarrow errors derive from these
        raise SpotMatchError(f"cannot read bin positions: {err}", path) from err
    missing = set(_POSITION_COLUMNS) - set(table.columns)
    if missing:
        raise SpotMatchError(f"bin positions lack columns {sorted(missing)}", path)
    return table, path


def read_scalefactors(square_dir: Path) -> dict[str, float]:
    """``spatial/scalefactors_json.json`` as floats (``{}`` with a warning when missing)."""
    path = square_dir / "spatial" / "scalefactors_json.json"
    if not path.is_file():
        warnings.warn(f"{path}: missing; bin size in pixels unknown", UserWarning, stacklevel=3)
        return {}
    try:
        raw = json.loads(path.read_text())
        return {k: float(v) for k, v in raw.items() if isinstance(v, int | float)}
    except (ValueError, TypeError) as err:
        raise SpotMatchError(f"cannot read scale factors: {err}", path) from err


def fit_grid_affine(
    rows: np.ndarray, cols: np.ndarray, px_row: np.ndarray, px_col: np.ndarray, path: Path | None = None
) -> np.ndarray:
    """Least-squares affine map ``(array_row, array_col, 1) → (pixel row, pixel col)`` as a (2, 3) array.

    Raises
    ------
    SpotMatchError
        Fewer than 3 bins, or bins on one line (no 2-D grid to fit).
    """
    design = np.stack([rows, cols, np.ones_like(rows)], 1).astype(np.float64)
    if len(design) < 3 or np.linalg.matrix_rank(design) < 3:
        raise SpotMatchError("too few bins (or all on one line) to fit the grid to pixel map", path)
    target = np.stack([px_row, px_col], 1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    return coef.T  # (2, 3)


def grid_to_px(affine: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Full-res (x, y) pixel centres (N, 2) of grid positions through a (2, 3) affine (rows → y, cols → x)."""
    a = np.asarray(affine, dtype=np.float64)
    y = a[0, 0] * rows + a[0, 1] * cols + a[0, 2]
    x = a[1, 0] * rows + a[1, 1] * cols + a[1, 2]
    return np.stack([x, y], 1)


def aggregate_bins(
    X: sparse.csr_matrix, rows: np.ndarray, cols: np.ndarray, factor: int
) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Sum fine bins into ``factor × factor`` blocks.

    Parameters
    ----------
    X
        Fine bins × genes counts (CSR).
    rows, cols
        Fine grid indices of the rows of ``X``.
    factor
        Fine bins per coarse bin edge (e.g. 4 for 8 µm from 2 µm).

    Returns
    -------
    counts, coarse_rows, coarse_cols
        Coarse bins (sorted by row, then column) × genes summed counts, and their grid indices.
    """
    r, c = rows // factor, cols // factor
    width = int(c.max()) + 1
    keys, inverse = np.unique(r.astype(np.int64) * width + c, return_inverse=True)
    member = sparse.csr_matrix(
        (np.ones(len(r), X.dtype), (inverse.ravel(), np.arange(len(r)))), shape=(len(keys), len(r))
    )
    return (member @ X).tocsr(), keys // width, keys % width


def find_recorded_image(binned: Path) -> Path | None:
    """The full-resolution image Space Ranger was given, from ``<sample>/_invocation`` when it still exists."""
    outs = binned.parent
    for inv in (outs.parent / "_invocation", outs / "_invocation"):
        if inv.is_file():
            text = inv.read_text(errors="replace")
            for key in ("tissue_image_paths", "tissue_image_path", "image"):
                for m in re.finditer(rf'{key}\s*[:=]\s*\[?\s*"([^"]+)"', text):
                    cand = Path(m.group(1))
                    if cand.is_file():
                        return cand
    return None


def _positions_for(adata: Any, table: pd.DataFrame, pos_path: Path, matrix_path: Path) -> pd.DataFrame:
    """Rows of the positions table for the matrix barcodes (in-tissue only), matrix order."""
    idx = pd.Index(table["barcode"].astype(str)).get_indexer(adata.obs_names)
    if (idx < 0).all():
        raise SpotMatchError(f"none of the {adata.n_obs} barcodes of {matrix_path.name} is in this table", pos_path)
    if (idx < 0).any():
        warnings.warn(
            f"{pos_path}: {(idx < 0).sum()} matrix barcodes have no position and are dropped", UserWarning, stacklevel=3
        )
    return table.iloc[np.where(idx >= 0, idx, 0)].assign(_found=idx >= 0)


def read_visium_hd(
    folder: str | os.PathLike, bin_um: int = 8, image: str | os.PathLike | None = None, *, library_id: str | None = None
) -> Any:
    """Read one bin size of a Visium HD Space Ranger folder as one AnnData sample.

    Parameters
    ----------
    folder
        ``<sample>``, its ``outs`` or ``outs/binned_outputs``.
    bin_um
        Bin edge in µm: a size Space Ranger wrote (2, 8, 16), or any multiple of 2 µm summed from the
        2 µm bins.
    image
        Full-resolution H&E the pixel coordinates refer to; default: the image recorded in
        ``_invocation`` when it exists.  Bins outside it are dropped with a warning.
    library_id
        Sample name; default: the matrix's library id, else the sample folder's name.

    Returns
    -------
    anndata.AnnData
        In-tissue bins × genes raw counts; ``obsm['spatial']`` bin centres (full-res px, x, y);
        ``obs`` ``array_row``, ``array_col`` (grid of this bin size), ``section``, ``patient``;
        ``uns['spatial'][lib]`` (``scalefactors`` with ``bin_size_um`` and ``spot_diameter_fullres`` =
        bin edge in px; ``metadata['microns_per_pixel']``); ``uns['bin_grid']`` = ``{'bin_um',
        'affine'}`` with ``affine`` (2, 3) mapping ``(array_row, array_col, 1)`` → ``(y, x)`` px.

    Raises
    ------
    MissingInputError, CountsError, SpotMatchError, ImageReadError, InputError
    """
    binned = find_binned_outputs(folder)
    sizes = available_bin_sizes(binned)
    bin_um = int(bin_um)
    if bin_um in sizes:
        square, factor = binned / bin_folder_name(bin_um), 1
    elif bin_um > 0 and bin_um % 2 == 0 and 2 in sizes:
        square, factor = binned / bin_folder_name(2), bin_um // 2
    else:
        have = ", ".join(f"{s} µm" for s in sizes) or "none"
        raise InputError(
            f"no {bin_um} µm bins (present: {have}; other sizes need square_002um and a multiple of 2 µm)", binned
        )
    matrix_path = square / "filtered_feature_bc_matrix.h5"
    adata = read_10x_h5(matrix_path)
    table, pos_path = read_bin_positions(square)
    sf = read_scalefactors(square)
    rows_all = table["array_row"].to_numpy(np.int64)
    cols_all = table["array_col"].to_numpy(np.int64)
    affine = fit_grid_affine(
        rows_all, cols_all, table["pxl_row_in_fullres"].to_numpy(), table["pxl_col_in_fullres"].to_numpy(), pos_path
    )
    pos = _positions_for(adata, table, pos_path, matrix_path)
    keep = pos["_found"].to_numpy() & (pos["in_tissue"].to_numpy() == 1)
    if not keep.any():
        raise SpotMatchError(f"none of the barcodes of {matrix_path.name} is an in-tissue bin", pos_path)
    if not keep.all():
        adata, pos = adata[keep].copy(), pos[keep]
    rows, cols = pos["array_row"].to_numpy(np.int64), pos["array_col"].to_numpy(np.int64)
    X = adata.X.tocsr() if sparse.issparse(adata.X) else sparse.csr_matrix(adata.X)
    if factor == 1:
        xy = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(np.float64)
        obs_names = adata.obs_names.astype(str)
    else:
        X, rows, cols = aggregate_bins(X, rows, cols, factor)
        centre = (factor - 1) / 2.0  # centre of a block, in fine-grid units
        xy = grid_to_px(affine, rows * factor + centre, cols * factor + centre)
        # coarse (R, C) sits at fine (R·f + centre, C·f + centre)
        affine = np.stack(
            [affine[:, 0] * factor, affine[:, 1] * factor, affine[:, 2] + (affine[:, 0] + affine[:, 1]) * centre], 1
        )
        obs_names = bin_barcode(bin_um, rows, cols)
    import anndata as ad

    lib = library_id or next((s for s in adata.uns.get("library_ids", []) if s and s != "custom"), None)
    if not lib:
        outs = binned.parent
        lib = outs.parent.name if outs.name.lower() == "outs" else outs.name
    obs = pd.DataFrame(
        {"array_row": rows, "array_col": cols, "section": lib, "patient": lib}, index=pd.Index(obs_names, dtype=str)
    )
    out = ad.AnnData(X=X, obs=obs, var=adata.var.copy())
    out.obsm["spatial"] = xy

    if image is None:
        image = find_recorded_image(binned)
    mpp = shape = None
    if image is not None:
        from .wsi import open_slide

        with open_slide(image) as slide:
            shape, mpp = slide.shape, slide.mpp
    mpp = mpp or sf.get("microns_per_pixel")
    if mpp is None and sf.get("spot_diameter_fullres") and sf.get("bin_size_um"):
        mpp = sf["bin_size_um"] / sf["spot_diameter_fullres"]
    scalefactors = dict(sf, bin_size_um=float(bin_um))
    if factor > 1:
        if mpp:
            scalefactors["spot_diameter_fullres"] = bin_um / mpp
        else:
            scalefactors.pop("spot_diameter_fullres", None)
    images = {
        key: px
        for key in ("hires", "lowres")
        if (px := _read_png(square / "spatial" / f"tissue_{key}_image.png")) is not None
    }
    out.uns["spatial"] = spatial_uns(
        lib, source_image_path=image, microns_per_pixel=mpp, scalefactors=scalefactors, images=images
    )
    out.uns["bin_grid"] = {"bin_um": float(bin_um), "affine": np.asarray(affine, dtype=np.float64)}
    if shape is not None:
        out = drop_spots_outside(out, shape, image)
    validate_sample(out, matrix_path)
    return out
