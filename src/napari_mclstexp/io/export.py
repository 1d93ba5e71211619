"""Export predictions for other tools: QuPath GeoJSON (spots + measurements + domains) and CSV.

QuPath reads a GeoJSON ``FeatureCollection`` whose features carry ``properties.objectType``
(``"detection"``), ``properties.measurements`` (name → number) and ``properties.classification``
(``{"name", "color": [r, g, b]}``).  Coordinates are full-resolution image pixels ``(x, y)``, the
same frame as ``obsm['spatial']``, so the file overlays the slide QuPath opens.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from ..atomic import atomic_write_path
from ..errors import InputError, OutputError

#: Categorical colours (RGB uint8) for domains; the viewer's legend uses the same list.
CATEGORY_COLORS = np.array(
    [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
        [188, 189, 34],
        [23, 190, 207],
        [174, 199, 232],
        [255, 187, 120],
        [152, 223, 138],
        [255, 152, 150],
        [197, 176, 213],
        [196, 156, 148],
        [247, 182, 210],
        [199, 199, 199],
        [219, 219, 141],
        [158, 218, 229],
    ],
    dtype=np.uint8,
)


def category_colors(n: int) -> np.ndarray:
    """``(n, 3)`` uint8 RGB colours for ``n`` categories (cycling after 20)."""
    return CATEGORY_COLORS[np.arange(n) % len(CATEGORY_COLORS)]


def domain_colors(labels: Sequence) -> dict:
    """One colour per domain label, the same on screen and in every export: integer labels ``i``
    (the Domains widget's ``Domain i``) get ``category_colors`` entry ``i``; other labels their rank
    in sorted order.  Returns ``{label: [r, g, b]}`` (uint8 values as ints)."""
    uniques = list(pd.unique(np.asarray(labels)))
    try:
        index = {u: int(u) for u in uniques if float(u) == int(u) and int(u) >= 0}
    except (TypeError, ValueError):
        index = {}
    if len(index) != len(uniques):
        index = {u: i for i, u in enumerate(sorted(uniques, key=str))}
    table = category_colors(max(index.values(), default=-1) + 1)
    return {u: table[i].tolist() for u, i in index.items()}


def _square(cx: float, cy: float, edge: float) -> list[list[float]]:
    h = edge / 2.0
    ring = [[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h], [cx - h, cy - h]]
    return np.round(np.asarray(ring, float), 3).tolist()


def _dense_columns(adata, genes: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
    names = list(adata.var_names) if genes is None else list(genes)
    missing = [g for g in names if g not in adata.var_names]
    if missing:
        raise InputError(f"genes not in the predictions: {', '.join(missing[:5])}")
    sub = adata[:, names].X if names else np.zeros((adata.n_obs, 0), dtype=np.float32)
    values = sub.toarray() if sparse.issparse(sub) else np.asarray(sub)
    return names, values.astype(float, copy=False)


def _labels(adata, domains: np.ndarray | Sequence | str | None) -> np.ndarray | None:
    if domains is None:
        return None
    if isinstance(domains, str):
        if domains not in adata.obs:
            raise InputError(f"no obs column {domains!r} with domain labels")
        domains = adata.obs[domains].to_numpy()
    labels = np.asarray(domains)
    if labels.shape != (adata.n_obs,):
        raise InputError(f"{labels.shape[0]} domain labels for {adata.n_obs} spots")
    return labels


def _circle(cx: float, cy: float, radius: float, n_vertices: int) -> list[list[float]]:
    angles = np.linspace(0.0, 2 * np.pi, n_vertices, endpoint=False)
    ring = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)
    ring = np.vstack([ring, ring[:1]])  # GeoJSON rings are closed
    return np.round(ring, 3).tolist()


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def spots_to_geojson(
    adata,
    path: str | os.PathLike,
    *,
    genes: Sequence[str] | None = None,
    domains: np.ndarray | Sequence | str | None = None,
    domain_prefix: str = "Domain ",
    spot_diameter_px: float | None = None,
    n_vertices: int = 24,
    tile_px: float | None = None,
) -> Path:
    """Write spots as QuPath detections: a circle per spot, genes as measurements, domains as classes.

    Parameters
    ----------
    adata
        Predictions or a sample (``obsm['spatial']`` in full-resolution px ``(x, y)``).
    path
        Destination ``.geojson`` (written atomically).
    genes
        Genes to include as measurements (default all; ``[]`` for none).
    domains
        Domain labels per spot, or the name of an ``obs`` column holding them; each becomes the
        feature's ``classification`` (``domain_prefix`` + label, with a categorical colour).
    spot_diameter_px
        Circle diameter in full-resolution px; default from the sample's scale factors, else points.
    n_vertices
        Vertices per circle polygon.
    tile_px
        Write squares of this edge (full-res px) instead of circles; default: the grid step of
        whole-slide predictions (``uns['mclstexp']['grid']``: tiles that touch, no gaps), else circles.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    names, values = _dense_columns(adata, genes)
    labels = _labels(adata, domains)
    if spot_diameter_px is None:
        from ..sample import spot_diameter_px as sample_diameter

        spot_diameter_px = sample_diameter(adata)
    extra = {}
    if "uncertainty" in adata.obs:
        extra["uncertainty"] = adata.obs["uncertainty"].to_numpy(dtype=float)
    classes: dict = {}
    if labels is not None:
        classes = {u: (f"{domain_prefix}{u}", c) for u, c in domain_colors(labels).items()}
    if tile_px is None:
        grid = adata.uns.get("mclstexp", {}).get("grid") if isinstance(adata.uns.get("mclstexp"), dict) else None
        tile_px = float(grid["step_px"]) if grid else None
    features = []
    for i, spot in enumerate(adata.obs_names):
        x, y = xy[i]
        if tile_px:
            geometry = {"type": "Polygon", "coordinates": [_square(x, y, tile_px)]}
        elif spot_diameter_px:
            geometry = {"type": "Polygon", "coordinates": [_circle(x, y, spot_diameter_px / 2, n_vertices)]}
        else:
            geometry = {"type": "Point", "coordinates": [round(float(x), 3), round(float(y), 3)]}
        measurements = {g: _number(v) for g, v in zip(names, values[i], strict=True)}
        measurements.update({k: _number(v[i]) for k, v in extra.items()})
        props: dict = {"objectType": "detection", "name": str(spot), "measurements": measurements}
        if labels is not None:
            name, color = classes[labels[i]]
            props["classification"] = {"name": name, "color": color}
        features.append(
            {
                "type": "Feature",
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{path.name}/{spot}")),
                "geometry": geometry,
                "properties": props,
            }
        )
    collection: dict = {"type": "FeatureCollection", "features": features}
    table = reliability_table(adata)
    if table is not None:  # a GeoJSON foreign member: QuPath ignores it, scripts can read it
        collection["mclstexp"] = {
            "gene_reliability": {
                g: {"r": _number(r), "reliable": bool(ok)} for g, r, ok in table.itertuples(index=False)
            }
        }
    _check_output(path)
    with atomic_write_path(path) as tmp:
        tmp.write_text(json.dumps(collection, allow_nan=False, separators=(",", ":")))
    return path


def predictions_table(
    adata, *, genes: Sequence[str] | None = None, domains: np.ndarray | Sequence | str | None = None
) -> pd.DataFrame:
    """One row per spot: ``spot``, ``x``, ``y`` (full-res px), ``uncertainty``, ``novelty`` and ``domain`` when
    known, then one column per gene (predicted values)."""
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    names, values = _dense_columns(adata, genes)
    front = {"spot": adata.obs_names.to_numpy(), "x": xy[:, 0], "y": xy[:, 1]}
    for column in ("uncertainty", "novelty"):
        if column in adata.obs:
            front[column] = adata.obs[column].to_numpy(dtype=float)
    labels = _labels(adata, domains)
    if labels is not None:
        front["domain"] = labels
    table = pd.DataFrame(front)
    return pd.concat([table, pd.DataFrame(values, columns=names)], axis=1)


def predictions_to_csv(
    adata,
    path: str | os.PathLike,
    *,
    genes: Sequence[str] | None = None,
    domains: np.ndarray | Sequence | str | None = None,
) -> Path:
    """Write :func:`predictions_table` as CSV (atomic), and the genes' held-out reliability beside it
    (:func:`reliability_path`) and the model card (``<name>.model_card.json``) when the predictions carry them.
    Returns the written path."""
    path = Path(path)
    table = predictions_table(adata, genes=genes, domains=domains)
    _check_output(path)
    with atomic_write_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    genes_table = reliability_table(adata)
    if genes_table is not None:
        table_to_csv(genes_table, reliability_path(path))
    info = adata.uns.get("mclstexp")
    card = info.get("model_card") if isinstance(info, dict) else None
    if isinstance(card, dict):
        import json

        with atomic_write_path(path.with_name(path.stem + ".model_card.json")) as tmp:
            tmp.write_text(json.dumps(_plain(card), indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def _plain(value):
    """A model card read back from .h5ad (numpy arrays and scalars) as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in np.asarray(value, dtype=object).tolist()]
    return value.item() if isinstance(value, np.generic) else value


def table_to_csv(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write any table (e.g. a region gene ranking) as CSV, atomically.  Returns the path."""
    path = Path(path)
    _check_output(path)
    with atomic_write_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return path


def reliability_table(adata) -> pd.DataFrame | None:
    """Per-gene held-out reliability of predictions (``uns['mclstexp']['reliability']``) as a table
    ``gene, r, reliable`` (``reliable``: r ≥ the stored threshold), or ``None`` when there is none."""
    info = adata.uns.get("mclstexp", {}) if isinstance(adata.uns.get("mclstexp"), dict) else {}
    rel = info.get("reliability")
    if not isinstance(rel, dict) or "genes" not in rel:
        return None
    r = np.array([np.nan if v is None else float(v) for v in rel["r"]], dtype=float)
    threshold = float(rel.get("threshold", 0.0))
    return pd.DataFrame({"gene": [str(g) for g in rel["genes"]], "r": r, "reliable": r >= threshold})


def reliability_path(path: str | os.PathLike) -> Path:
    """Where an export's per-gene reliability goes: ``<stem>.genes.csv`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.genes.csv")


def _check_output(path: Path) -> None:
    if path.is_dir():
        raise OutputError("is a folder, not a file name", path)
