"""Reader for the her2st legacy Spatial Transcriptomics layout (Andersson et al. 2021).

Layout (``root``): ``ST-cnts/<section>.tsv.gz`` counts (rows ``"<x>x<y>"``, columns genes),
``ST-spotfiles/<section>_selection.tsv`` (``x y new_x new_y pixel_x pixel_y selected``),
``ST-imgs/<patient>/<section>/*.jpg`` (H&E, only some sections), ``ST-pat/lbl/<section>_labeled_coordinates.tsv``
(pathologist labels) and ``ST-cluster/<section>-cluster-annotation.tsv.gz`` (reference clusters).
Legacy ST spots are 100 µm wide at 200 µm centre spacing; the pixel size is estimated from the spot file.
"""

from __future__ import annotations

import gzip
import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import CountsError, MissingInputError, SpotMatchError
from ..progress import CancelToken, Progress, ProgressGen, run
from ..sample import (
    check_counts,
    drop_spots_outside,
    make_var_names_unique,
    spatial_uns,
    validate_sample,
)

#: Legacy ST geometry (µm).
SPOT_SPACING_UM = 200.0
SPOT_DIAMETER_UM = 100.0
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}


def _require_dir(root: Path) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MissingInputError("her2st folder not found", root)
    if not (root / "ST-cnts").is_dir():
        raise MissingInputError("not a her2st folder: the ST-cnts sub-folder with counts is missing", root)
    return root


def list_her2st_sections(root: str | os.PathLike) -> list[str]:
    """Sections that have a counts file (``ST-cnts/<section>.tsv.gz``), sorted (A1, A2, ...)."""
    root = _require_dir(Path(root))
    names = [p.name.split(".")[0] for p in (root / "ST-cnts").glob("*.tsv*")]
    return sorted(set(names))


def _counts_file(root: Path, section: str) -> Path:
    for name in (f"{section}.tsv.gz", f"{section}.tsv"):
        if (root / "ST-cnts" / name).is_file():
            return root / "ST-cnts" / name
    raise MissingInputError(f"no counts file for section {section}", root / "ST-cnts" / f"{section}.tsv.gz")


#: Rows parsed per ``np.loadtxt`` call: its C parser holds the GIL throughout, and a whole her2st section
#: (~600 spots × 15,000 genes) in one call held it ~1 s, so a viewer loading the folder froze that long.
ROWS_PER_PARSE = 32


def _parse_rows(rows: list[bytes]) -> np.ndarray:
    """int32 (rows, values) from tab-separated rows, a few rows per parser call (other threads run between)."""
    parts = [
        np.loadtxt(io.BytesIO(b"\n".join(rows[i : i + ROWS_PER_PARSE])), delimiter="\t", dtype=np.int32, ndmin=2)
        for i in range(0, len(rows), ROWS_PER_PARSE)
    ]
    if len({p.shape[1] for p in parts}) > 1:
        raise ValueError("rows hold different numbers of values")
    return np.concatenate(parts, axis=0)


def read_counts_tsv(path: Path) -> tuple[sparse.csr_matrix, list[str], list[str]]:
    """Read a legacy ST counts table (tab-separated, optionally gzipped).

    Parsed with numpy's C ``loadtxt`` straight into int32 (about 5× faster than pandas on these
    15,000-column tables); falls back to float to report NaN or text clearly.

    Returns
    -------
    counts : scipy.sparse.csr_matrix
        int32 (spots × genes), float32 when the file holds non-integer values.
    spots : list of str
        Row names (``"<x>x<y>"``).
    genes : list of str
        Column names as written in the file (duplicates kept).
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:
        raise CountsError(f"cannot read counts file (corrupt or truncated?): {err}", path) from err
    lines = [ln for ln in raw.replace(b"\r", b"").split(b"\n") if ln.strip()]
    if not lines:
        raise CountsError("counts file is empty", path)
    try:
        genes = [g.strip('"') for g in lines[0].decode().split("\t")[1:]]
        names, rows = [], []
        for ln in lines[1:]:
            name, _, rest = ln.partition(b"\t")
            names.append(name.decode().strip('"'))
            rows.append(rest)
    except UnicodeDecodeError as err:
        raise CountsError(f"counts file is not text: {err}", path) from err
    if not rows:
        raise CountsError("counts file has a header but no spots", path)
    body = b"\n".join(rows)
    try:
        values = _parse_rows(rows)
    except ValueError:
        # Slow path for bad files only: pandas tells NaN, empty cells, text and ragged rows apart.
        try:
            table = pd.read_csv(io.BytesIO(body), sep="\t", header=None, low_memory=False)
        except pd.errors.ParserError as err:
            raise CountsError(f"rows hold different numbers of values: {err}", path) from err
        text = [i for i, t in enumerate(table.dtypes) if not np.issubdtype(t, np.number)]
        if text:
            raise CountsError(f"some counts are not numbers (e.g. in gene column {genes[text[0]]!r})", path) from None
        values = table.to_numpy(np.float64)
    if values.shape[1] != len(genes):
        raise CountsError(f"header names {len(genes)} genes but rows hold {values.shape[1]} values", path)
    check_counts(values, path)
    if values.dtype != np.int32:
        if np.all(values == np.round(values)):
            values = values.astype(np.int32)
        else:
            warnings.warn(f"{path}: counts are not whole numbers; kept as float", UserWarning, stacklevel=2)
            values = values.astype(np.float32)
    return sparse.csr_matrix(values), names, genes


def _spot_table(root: Path, section: str) -> pd.DataFrame:
    path = root / "ST-spotfiles" / f"{section}_selection.tsv"
    if not path.is_file():
        raise MissingInputError(f"no spot file for section {section}", path)
    try:
        spots = pd.read_csv(path, sep="\t")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SpotMatchError(f"cannot read spot file: {err}", path) from err
    needed = {"x", "y", "pixel_x", "pixel_y"}
    if not needed <= set(spots.columns):
        raise SpotMatchError(f"spot file lacks columns {sorted(needed - set(spots.columns))}", path)
    if "selected" in spots:
        spots = spots[spots["selected"].fillna(0).astype(int) == 1]
    spots = spots.dropna(subset=["x", "y", "pixel_x", "pixel_y"])
    spots = spots.assign(key=[f"{round(x)}x{round(y)}" for x, y in zip(spots["x"], spots["y"], strict=True)])
    n_dup = int(spots["key"].duplicated().sum())
    if n_dup:
        warnings.warn(f"{path}: {n_dup} spots share grid coordinates; the first is kept", UserWarning, stacklevel=2)
        spots = spots[~spots["key"].duplicated()]
    return spots.set_index("key")


def pixels_per_step(spots: pd.DataFrame) -> float | None:
    """Full-resolution pixels per array step: robust (Theil–Sen) slope of pixel vs array coordinates.

    The adjusted array coordinates (``new_x``, ``new_y``) are used when present; the x and y slopes
    are averaged.
    """
    from scipy.stats import theilslopes

    xcol = "new_x" if "new_x" in spots else "x"
    ycol = "new_y" if "new_y" in spots else "y"
    slopes = []
    for a, p in ((xcol, "pixel_x"), (ycol, "pixel_y")):
        arr, pix = spots[a].to_numpy(float), spots[p].to_numpy(float)
        if len(arr) < 3 or np.ptp(arr) == 0:
            continue
        slopes.append(abs(theilslopes(pix, arr).slope))
    return float(np.mean(slopes)) if slopes else None


def _image_for(root: Path, section: str) -> Path | None:
    folder = root / "ST-imgs" / section[0] / section
    if not folder.is_dir():
        return None
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file())
    return images[0] if images else None


def _labels(root: Path, section: str, obs: pd.DataFrame) -> None:
    """Add ``obs['annotation']`` and ``obs['cluster_ref']`` when label files exist (matched on rounded x, y)."""
    keys = obs["array_col"].astype(str) + "x" + obs["array_row"].astype(str)
    lbl = root / "ST-pat" / "lbl" / f"{section}_labeled_coordinates.tsv"
    if lbl.is_file():
        table = pd.read_csv(lbl, sep="\t").dropna(subset=["x", "y"])
        lkeys = [f"{round(x)}x{round(y)}" for x, y in zip(table["x"], table["y"], strict=True)]
        mapping = pd.Series(table["label"].astype(str).to_numpy(), index=lkeys)
        mapping = mapping[~mapping.index.duplicated()]
        obs["annotation"] = pd.Categorical(keys.map(mapping).to_numpy())
    clu = root / "ST-cluster" / f"{section}-cluster-annotation.tsv.gz"
    if clu.is_file():
        table = pd.read_csv(clu, sep="\t").dropna(subset=["x", "y"])
        ckeys = [f"{round(x)}x{round(y)}" for x, y in zip(table["x"], table["y"], strict=True)]
        mapping = pd.Series(table["label"].astype(str).to_numpy(), index=ckeys)
        mapping = mapping[~mapping.index.duplicated()]
        obs["cluster_ref"] = pd.Categorical(keys.map(mapping).to_numpy())


def read_her2st_section(root: str | os.PathLike, section: str) -> Any:
    """Read one her2st section as an AnnData sample.

    Parameters
    ----------
    root
        The her2st folder.
    section
        Section name, e.g. ``"B4"`` (patient = first letter).

    Returns
    -------
    anndata.AnnData
        Raw int32 counts; ``obsm['spatial']`` = the spot file's ``pixel_x, pixel_y`` (full-resolution
        px); ``obs`` ``array_col``/``array_row`` (rounded x/y), ``section``, ``patient`` and, when
        present, ``annotation`` and ``cluster_ref``; ``uns['spatial'][section]`` with
        ``spot_diameter_fullres`` (px), ``microns_per_pixel`` (estimated from the 200 µm spot
        spacing) and ``source_image_path`` when the section has an image.

    Raises
    ------
    MissingInputError, CountsError, SpotMatchError
    """
    import anndata as ad

    from .wsi import open_slide

    root = _require_dir(Path(root))
    counts_path = _counts_file(root, section)
    matrix, spot_names, genes = read_counts_tsv(counts_path)
    spots = _spot_table(root, section)
    rows = pd.Index(spot_names)
    matched = rows.isin(spots.index)
    n_match = int(matched.sum())
    if n_match == 0:
        raise SpotMatchError(
            f"none of the {len(rows)} count rows matches a spot of {section}_selection.tsv "
            f"(rows look like {rows[0]!r}, spots like {spots.index[0] if len(spots) else 'none'!r})",
            counts_path,
        )
    if n_match < len(rows):
        warnings.warn(
            f"{counts_path}: {n_match} of {len(rows)} count rows match a spot; "
            f"the other {len(rows) - n_match} are dropped",
            UserWarning,
            stacklevel=2,
        )
    keep = np.flatnonzero(matched)
    matrix = matrix[keep]
    table = spots.loc[rows[keep]]
    obs = pd.DataFrame(
        {
            "array_col": np.rint(table["x"].to_numpy(float)).astype(np.int64),
            "array_row": np.rint(table["y"].to_numpy(float)).astype(np.int64),
            "section": section,
            "patient": section[0],
        },
        index=[f"{section}_{k}" for k in rows[keep]],
    )
    _labels(root, section, obs)
    adata = ad.AnnData(X=matrix, obs=obs, var=pd.DataFrame(index=pd.Index(genes, dtype=str)))
    make_var_names_unique(adata, counts_path)
    adata.obsm["spatial"] = table[["pixel_x", "pixel_y"]].to_numpy(np.float64)
    step = pixels_per_step(table)
    mpp = SPOT_SPACING_UM / step if step else None
    scalefactors = {"spot_diameter_fullres": SPOT_DIAMETER_UM / mpp} if mpp else {}
    image = _image_for(root, section)
    adata.uns["spatial"] = spatial_uns(
        section, source_image_path=image, microns_per_pixel=mpp, scalefactors=scalefactors
    )
    if image is not None:
        with open_slide(image) as slide:
            shape = slide.shape
        adata = drop_spots_outside(adata, shape, image)
    validate_sample(adata, counts_path)
    return adata


def iter_read_her2st(
    root: str | os.PathLike, sections: list[str] | None = None, *, cancel: CancelToken | None = None
) -> ProgressGen[dict[str, Any]]:
    """Generator form of :func:`read_her2st` (yields ``Progress(stage="import")`` per section)."""
    root = _require_dir(Path(root))
    available = list_her2st_sections(root)
    if sections is None:
        sections = available
    else:
        missing = [s for s in sections if s not in available]
        if missing:
            raise MissingInputError(f"no counts for sections {', '.join(missing)}", root / "ST-cnts")
    if not sections:
        raise MissingInputError("no sections found (ST-cnts/<section>.tsv.gz)", root / "ST-cnts")
    out: dict[str, Any] = {}
    for i, section in enumerate(sections):
        if cancel is not None:
            cancel.raise_if_cancelled()
        yield Progress("import", i, len(sections), message=section)
        out[section] = read_her2st_section(root, section)
    yield Progress("import", len(sections), len(sections))
    return out


def read_her2st(root: str | os.PathLike, sections: list[str] | None = None) -> dict[str, Any]:
    """Read her2st sections (all with counts by default) into ``{section: AnnData}``;
    see :func:`read_her2st_section`."""
    return run(iter_read_her2st(root, sections))
