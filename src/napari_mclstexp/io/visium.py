"""Reader for 10x Genomics Visium Space Ranger output folders.

Reads ``filtered_feature_bc_matrix.h5`` (10x HDF5, read with h5py), ``spatial/tissue_positions_list.csv``
(no header, Space Ranger < 2) or ``spatial/tissue_positions.csv`` (header, Space Ranger ≥ 2),
``spatial/scalefactors_json.json`` and the hires/lowres PNGs.  Only in-tissue barcodes present in the
matrix are kept.  Spot centres are full-resolution pixels, (x = column, y = row).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import CountsError, ImageReadError, MissingInputError, SpotMatchError
from ..sample import (
    check_counts,
    drop_spots_outside,
    make_var_names_unique,
    spatial_uns,
    validate_sample,
)

#: Visium spot diameter (µm); with Space Ranger's ``spot_diameter_fullres`` it gives µm per pixel.
VISIUM_SPOT_UM = 55.0
_POSITION_COLUMNS = ["barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"]


def _decode(values: np.ndarray) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def read_10x_h5(path: str | os.PathLike) -> Any:
    """Read a 10x feature-barcode matrix HDF5 (Cell/Space Ranger v3+ ``matrix`` group or legacy v2).

    Returns
    -------
    anndata.AnnData
        Barcodes × genes raw counts (CSR); ``var['gene_ids']``, ``var['feature_types']`` when stated.
        Only ``Gene Expression`` features are kept.  Gene symbols are made unique (with a warning).
    """
    import anndata as ad
    import h5py

    path = Path(path)
    if not path.is_file():
        raise MissingInputError("count matrix not found", path)
    try:
        with h5py.File(path, "r") as f:
            if "matrix" in f:
                g = f["matrix"]
                feats = g["features"]
                names = _decode(feats["name"][:])
                ids = _decode(feats["id"][:])
                types = _decode(feats["feature_type"][:]) if "feature_type" in feats else None
            else:
                g = f[next(iter(f.keys()))]
                names = _decode(g["gene_names"][:])
                ids = _decode(g["genes"][:])
                types = None
            n_genes, n_barcodes = (int(v) for v in g["shape"][:])
            barcodes = _decode(g["barcodes"][:])
            data, indices, indptr = g["data"][:], g["indices"][:], g["indptr"][:]
            library_ids = _decode(np.atleast_1d(f.attrs.get("library_ids", [])))
    except (OSError, KeyError, StopIteration, ValueError) as err:
        raise CountsError(f"not a readable 10x HDF5 count matrix: {err}", path) from err
    # Stored genes × barcodes in CSC, i.e. barcodes × genes in CSR.
    X = sparse.csr_matrix((data, indices, indptr), shape=(n_barcodes, n_genes))
    check_counts(X, path)
    if np.issubdtype(X.dtype, np.floating) and np.all(X.data == np.round(X.data)):
        X = X.astype(np.float32)
    var = pd.DataFrame({"gene_ids": ids}, index=pd.Index(names, dtype=str))
    if types is not None:
        var["feature_types"] = types
    adata = ad.AnnData(X=X, obs=pd.DataFrame(index=pd.Index(barcodes, dtype=str)), var=var)
    if types is not None:
        adata = adata[:, np.asarray(types) == "Gene Expression"].copy()
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise CountsError(f"count matrix is empty ({adata.n_obs} barcodes × {adata.n_vars} genes)", path)
    make_var_names_unique(adata, path)
    adata.uns["library_ids"] = [s for s in library_ids if s]
    return adata


def read_tissue_positions(spatial_dir: Path) -> tuple[pd.DataFrame, Path]:
    """Spot table indexed by barcode with ``in_tissue``, ``array_row/col``, ``pxl_row/col_in_fullres``."""
    new, old = spatial_dir / "tissue_positions.csv", spatial_dir / "tissue_positions_list.csv"
    if new.is_file():
        path, header = new, 0
    elif old.is_file():
        path, header = old, None
    else:
        raise MissingInputError("no tissue_positions.csv or tissue_positions_list.csv", spatial_dir)
    try:
        table = pd.read_csv(path, header=header)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SpotMatchError(f"cannot read spot positions: {err}", path) from err
    if header is None or table.columns[0] != "barcode":
        if table.shape[1] != len(_POSITION_COLUMNS):
            raise SpotMatchError(f"expected {len(_POSITION_COLUMNS)} columns, found {table.shape[1]}", path)
        table.columns = _POSITION_COLUMNS
    missing = set(_POSITION_COLUMNS) - set(table.columns)
    if missing:
        raise SpotMatchError(f"spot positions lack columns {sorted(missing)}", path)
    table = table.set_index(table["barcode"].astype(str))
    bad = table[["pxl_row_in_fullres", "pxl_col_in_fullres"]].isna().any(axis=1)
    return table[~bad], path


def _read_png(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise ImageReadError(f"cannot read image: {err}", path) from err


def _find_matrix(folder: Path) -> Path:
    exact = folder / "filtered_feature_bc_matrix.h5"
    if exact.is_file():
        return exact
    found = sorted(folder.glob("*filtered_feature_bc_matrix.h5"))
    if found:
        return found[0]
    raise MissingInputError("no filtered_feature_bc_matrix.h5 in this Space Ranger folder", folder)


def read_visium(
    folder: str | os.PathLike, image: str | os.PathLike | None = None, *, library_id: str | None = None
) -> Any:
    """Read a Visium Space Ranger output folder as one AnnData sample.

    Parameters
    ----------
    folder
        The Space Ranger ``outs`` folder (holding ``filtered_feature_bc_matrix.h5`` and ``spatial/``).
    image
        Optional full-resolution H&E image (TIFF/SVS/JPEG ...) the coordinates refer to; stored as
        ``source_image_path``; spots outside it are dropped with a warning.
    library_id
        Name of the sample; default: the matrix's library id, else the folder name.

    Returns
    -------
    anndata.AnnData
        In-tissue spots × genes raw counts; ``obsm['spatial']`` (x = ``pxl_col_in_fullres``,
        y = ``pxl_row_in_fullres``); ``obs`` ``array_row``, ``array_col``, ``section``, ``patient``;
        ``var['gene_ids']``; ``uns['spatial'][library_id]`` with ``scalefactors``, ``images``
        (``hires``, ``lowres``) and ``metadata`` (``microns_per_pixel`` from the image when it states
        it, else 55 µm / ``spot_diameter_fullres``).

    Raises
    ------
    MissingInputError, CountsError, SpotMatchError, ImageReadError
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise MissingInputError("Visium folder not found", folder)
    if not (folder / "spatial").is_dir() and (folder / "outs").is_dir():
        folder = folder / "outs"
    matrix_path = _find_matrix(folder)
    spatial_dir = folder / "spatial"
    if not spatial_dir.is_dir():
        raise MissingInputError("no spatial/ sub-folder (tissue positions and images)", folder)
    adata = read_10x_h5(matrix_path)
    positions, pos_path = read_tissue_positions(spatial_dir)
    in_tissue = positions[positions["in_tissue"].astype(int) == 1]
    matched = adata.obs_names.isin(in_tissue.index)
    n_match = int(matched.sum())
    if n_match == 0:
        raise SpotMatchError(
            f"none of the {adata.n_obs} barcodes of {matrix_path.name} is an in-tissue spot of this file", pos_path
        )
    if n_match < adata.n_obs:
        warnings.warn(
            f"{pos_path}: {n_match} of {adata.n_obs} matrix barcodes are in-tissue spots; the rest are dropped",
            UserWarning,
            stacklevel=2,
        )
        adata = adata[matched].copy()
    table = in_tissue.loc[adata.obs_names]
    # Space Ranger writes <sample>/outs/: name the section after the sample, not "outs"
    folder_name = folder.resolve().parent.name if folder.name.lower() == "outs" else folder.name
    lib = library_id or next((s for s in adata.uns.pop("library_ids", []) if s != "custom"), None) or folder_name
    adata.uns.pop("library_ids", None)
    adata.obs["array_row"] = table["array_row"].to_numpy(np.int64)
    adata.obs["array_col"] = table["array_col"].to_numpy(np.int64)
    adata.obs["section"] = lib
    adata.obs["patient"] = lib
    adata.obsm["spatial"] = table[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(np.float64)

    sf_path = spatial_dir / "scalefactors_json.json"
    scalefactors: dict[str, float] = {}
    if sf_path.is_file():
        try:
            scalefactors = {k: float(v) for k, v in json.loads(sf_path.read_text()).items()}
        except (ValueError, TypeError) as err:
            raise SpotMatchError(f"cannot read scale factors: {err}", sf_path) from err
    else:
        warnings.warn(f"{sf_path}: missing; spot size unknown", UserWarning, stacklevel=2)
    images = {}
    for key in ("hires", "lowres"):
        pixels = _read_png(spatial_dir / f"tissue_{key}_image.png")
        if pixels is not None:
            images[key] = pixels
    mpp = None
    if image is not None:
        from .wsi import open_slide

        with open_slide(image) as slide:
            shape, mpp = slide.shape, slide.mpp
    if mpp is None and scalefactors.get("spot_diameter_fullres"):
        mpp = VISIUM_SPOT_UM / scalefactors["spot_diameter_fullres"]
    adata.uns["spatial"] = spatial_uns(
        lib, source_image_path=image, microns_per_pixel=mpp, scalefactors=scalefactors, images=images
    )
    if image is not None:
        adata = drop_spots_outside(adata, shape, image)
    validate_sample(adata, matrix_path)
    return adata
