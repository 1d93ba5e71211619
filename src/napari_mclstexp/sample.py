"""The sample type: one AnnData per section, following the scverse Visium conventions.

Accessors read the conventions (see ``docs/ARCHITECTURE.md``); :func:`validate_sample` checks them and
raises :class:`~napari_mclstexp.errors.SampleFormatError` (or :class:`CountsError`) with a clear message.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from .errors import CountsError, MissingInputError, SampleFormatError, SpotMatchError

if TYPE_CHECKING:
    from anndata import AnnData


def library_id(adata: AnnData) -> str:
    """The key of ``uns['spatial']`` describing this sample.

    With several keys, the one named by the sample's ``obs['section']``; falls back to the single
    ``obs['section']`` value, then to ``"sample"``, when ``uns['spatial']`` is missing.

    Raises
    ------
    SampleFormatError
        ``uns['spatial']`` holds several libraries and ``obs['section']`` names none of them (which one
        describes these spots cannot be told).
    """
    spatial = adata.uns.get("spatial") if hasattr(adata, "uns") else None
    if isinstance(spatial, dict) and spatial:
        keys = list(spatial)
        if len(keys) == 1:
            return str(keys[0])
        sections = set(map(str, adata.obs["section"].unique())) if "section" in adata.obs else set()
        matching = [str(k) for k in keys if str(k) in sections]
        if len(matching) == 1:
            return matching[0]
        raise SampleFormatError(
            f"uns['spatial'] holds {len(keys)} libraries ({', '.join(map(str, keys[:4]))}"
            f"{', …' if len(keys) > 4 else ''}) and obs['section'] names "
            f"{'several' if matching else 'none'} of them: keep the one of these spots"
        )
    if "section" in adata.obs and adata.n_obs:
        values = adata.obs["section"].astype(str).unique()
        if len(values) == 1:
            return str(values[0])
    return "sample"


def section_name(adata: AnnData, position: int = 0) -> str:
    """The sample's section name: ``obs['section']`` when it holds one value, else its single
    ``uns['spatial']`` library id, else ``sample<position>`` (training, banks and CV folds name samples so)."""
    if "section" in adata.obs and adata.n_obs:
        values = adata.obs["section"].astype(str).unique()
        if len(values) == 1:
            return str(values[0])
    spatial = adata.uns.get("spatial") if hasattr(adata, "uns") else None
    if isinstance(spatial, dict) and len(spatial) == 1:
        return str(next(iter(spatial)))
    return f"sample{position}"


def _library(adata: AnnData) -> dict:
    spatial = adata.uns.get("spatial")
    if not isinstance(spatial, dict):
        return {}
    lib = spatial.get(library_id(adata))
    return lib if isinstance(lib, dict) else {}


def image_path(adata: AnnData) -> Path | None:
    """Full-resolution image of the sample (``uns['spatial'][lib]['metadata']['source_image_path']``), or ``None``."""
    value = _library(adata).get("metadata", {}).get("source_image_path")
    if value is None:
        return None
    value = str(value)
    return Path(value) if value.strip() else None


def set_image_path(adata: AnnData, path: str | os.PathLike, *, relative_to: str | os.PathLike | None = None) -> Path:
    """Store the sample's full-resolution image as an absolute path; returns it.

    A relative ``path`` is taken relative to ``relative_to`` (the folder of the ``.h5ad`` that named it),
    else to the working directory.  The library is :func:`library_id`'s (created when missing).
    """
    p = Path(path).expanduser()
    if not p.is_absolute() and relative_to is not None:
        p = Path(relative_to) / p
    p = p.resolve()
    lib = library_id(adata)
    spatial = adata.uns.setdefault("spatial", {})
    spatial.setdefault(lib, {}).setdefault("metadata", {})["source_image_path"] = str(p)
    return p


def spot_xy(adata: AnnData) -> np.ndarray:
    """Spot centres as a float64 (N, 2) copy in full-resolution pixels, (x = column, y = row)."""
    if "spatial" not in adata.obsm:
        raise SampleFormatError("sample has no obsm['spatial'] (spot centres in full-resolution pixels)")
    return np.asarray(adata.obsm["spatial"], dtype=np.float64)[:, :2].copy()


def microns_per_pixel(adata: AnnData) -> float | None:
    """Micrometres per full-resolution pixel (``metadata['microns_per_pixel']``), or ``None`` if unknown."""
    value = _library(adata).get("metadata", {}).get("microns_per_pixel")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def spot_diameter_px(adata: AnnData) -> float | None:
    """Spot diameter in full-resolution pixels (``scalefactors['spot_diameter_fullres']``), or ``None``."""
    value = _library(adata).get("scalefactors", {}).get("spot_diameter_fullres")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def spatial_uns(
    lib: str,
    *,
    source_image_path: str | os.PathLike | None = None,
    microns_per_pixel: float | None = None,
    scalefactors: dict | None = None,
    images: dict | None = None,
) -> dict:
    """Build the ``uns['spatial']`` dictionary of one sample.

    Parameters
    ----------
    lib
        Library id (section name).
    source_image_path
        Full-resolution image; stored as an absolute path string.
    microns_per_pixel
        µm per full-resolution pixel, when known.
    scalefactors
        e.g. ``spot_diameter_fullres`` (px), ``tissue_hires_scalef``, ``tissue_lowres_scalef``.
    images
        Optional downscaled images (``hires``, ``lowres``) as uint8 arrays.
    """
    metadata: dict[str, Any] = {}
    if source_image_path is not None:
        metadata["source_image_path"] = str(Path(source_image_path).expanduser().resolve())
    if microns_per_pixel is not None:
        metadata["microns_per_pixel"] = float(microns_per_pixel)
    entry: dict[str, Any] = {"scalefactors": dict(scalefactors or {}), "metadata": metadata}
    if images:
        entry["images"] = dict(images)
    return {lib: entry}


def check_counts(X: Any, path: str | os.PathLike | None = None) -> None:
    """Raise :class:`CountsError` when counts are empty, NaN/infinite or negative."""
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise CountsError(f"counts are empty ({X.shape[0]} spots × {X.shape[1]} genes)", path)
    values = X.data if sparse.issparse(X) else np.asarray(X)
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise CountsError(f"counts are not numbers (dtype {values.dtype})", path)
    if values.size == 0:
        return
    if np.issubdtype(values.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise CountsError(f"counts contain {bad} NaN or infinite values", path)
    neg = int(np.count_nonzero(values < 0))
    if neg:
        raise CountsError(f"counts contain {neg} negative values", path)


def make_var_names_unique(adata: AnnData, path: str | os.PathLike | None = None) -> int:
    """Make duplicate gene names unique in place (``GENE``, ``GENE-1``, ...), warning how many; returns that number."""
    n_dup = int(adata.var_names.duplicated().sum())
    if n_dup:
        examples = ", ".join(sorted(set(adata.var_names[adata.var_names.duplicated()]))[:5])
        where = f"{path}: " if path is not None else ""
        warnings.warn(
            f"{where}{n_dup} duplicate gene names made unique by adding -1, -2, ... (e.g. {examples})",
            UserWarning,
            stacklevel=2,
        )
        adata.var_names_make_unique()
    return n_dup


def drop_spots_outside(adata: AnnData, shape: tuple[int, int], path: str | os.PathLike | None = None) -> Any:
    """Drop spots whose centre lies outside an image of ``shape`` (H, W) px, warning how many.

    Returns
    -------
    anndata.AnnData
        ``adata`` itself when every spot is inside, else a copy without the outside spots.

    Raises
    ------
    SpotMatchError
        No spot lies inside the image.
    """
    xy = spot_xy(adata)
    h, w = shape
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h) & np.isfinite(xy).all(1)
    n_out = int((~inside).sum())
    if n_out == 0:
        return adata
    if n_out == len(inside):
        finite = xy[np.isfinite(xy).all(1)]
        span = (
            f"; the spots span x {finite[:, 0].min():.0f}–{finite[:, 0].max():.0f}, "
            f"y {finite[:, 1].min():.0f}–{finite[:, 1].max():.0f} px"
            if len(finite)
            else ""
        )
        raise SpotMatchError(
            f"none of the {n_out} spots lies inside the image ({w} × {h} px){span}: is it the "
            "full-resolution image the spot coordinates refer to?",
            path,
        )
    where = f"{path}: " if path is not None else ""
    warnings.warn(
        f"{where}{n_out} of {len(inside)} spots lie outside the image ({w} × {h} px) and were dropped",
        UserWarning,
        stacklevel=2,
    )
    return adata[inside].copy()


def validate_sample(adata: AnnData, path: str | os.PathLike | None = None, *, require_image: bool = False) -> None:
    """Check that an AnnData follows the sample conventions; raise a clear typed error otherwise.

    Parameters
    ----------
    adata
        The sample.
    path
        File it came from (named in messages).
    require_image
        Also require ``source_image_path`` to be set and to exist.

    Raises
    ------
    SampleFormatError
        Missing/ill-shaped ``obsm['spatial']``, duplicate gene names, bad ``uns['spatial']``, bad grid
        coordinates, or (``require_image``) no image.
    CountsError
        No spots or genes, NaN/infinite or negative counts.
    MissingInputError
        ``require_image`` and the image file does not exist.
    """
    check_counts(adata.X, path)
    if "spatial" not in adata.obsm:
        raise SampleFormatError(
            "missing obsm['spatial'] (spot centres in full-resolution pixels, x = column, y = row)", path
        )
    xy = np.asarray(adata.obsm["spatial"])
    if xy.ndim != 2 or xy.shape[1] < 2 or not np.issubdtype(xy.dtype, np.number):
        raise SampleFormatError(f"obsm['spatial'] must be a numeric (N, 2) array, got shape {xy.shape}", path)
    n_bad = int((~np.isfinite(xy[:, :2].astype(float))).any(axis=1).sum())
    if n_bad:
        raise SampleFormatError(f"obsm['spatial'] has {n_bad} spots with NaN/infinite coordinates", path)
    if not adata.var_names.is_unique:
        n_dup = int(adata.var_names.duplicated().sum())
        raise SampleFormatError(f"{n_dup} duplicate gene names in var_names (make them unique first)", path)
    for col in ("array_col", "array_row"):
        if col in adata.obs and not np.issubdtype(np.asarray(adata.obs[col]).dtype, np.integer):
            raise SampleFormatError(f"obs['{col}'] must hold integers, got {adata.obs[col].dtype}", path)
    spatial = adata.uns.get("spatial")
    if spatial is not None:
        if not isinstance(spatial, dict) or not spatial:
            raise SampleFormatError("uns['spatial'] must be a non-empty mapping {library_id: {...}}", path)
        for key, entry in spatial.items():
            if not isinstance(entry, dict):
                raise SampleFormatError(f"uns['spatial']['{key}'] must be a mapping", path)
    if require_image:
        img = image_path(adata)
        if img is None:
            raise SampleFormatError(
                "no image (uns['spatial'][library]['metadata']['source_image_path'] is not set): "
                "an expression-only section cannot train or be predicted from pixels; use sections "
                "with an H&E image (visium: import with --image)",
                path,
            )
        if not img.is_file():
            raise MissingInputError(f"the sample's image {img} does not exist", path)
