"""Per-class gene statistics of annotated regions (tumour, stroma, …) on a prediction.

For each annotation class and gene:

* ``n_inside`` / ``n_outside``: spots (or whole-slide tiles) whose centre lies inside any of the class's
  polygons (holes excluded) / all other spots;
* ``mean_inside`` / ``mean_outside``: mean of the values as stored (the prediction's scale, e.g.
  ``log10_1e4``: ``v = log10(1 + 10⁴ · c / Σ_panel c)``);
* ``difference``: ``mean_inside − mean_outside`` (the tested statistic ``d``, on the prediction's log scale);
* ``expr_inside`` / ``expr_outside``: mean of the **back-transformed** values ``b = f⁻¹(v)``, i.e. the
  inverse of the normalisation (:func:`back_transform`: ``10^v − 1`` for ``log10_1e4`` and
  ``log10_1e4_per_gene``, ``e^v − 1`` for ``ln_cpm``, ``v`` for ``none``), expression per 10⁴ (10⁶) panel
  counts;
* ``log2_fold_change = log2((expr_inside + ε) / (expr_outside + ε))`` with ``ε`` = ``pseudocount``
  (0.01 per 10⁴ counts by default);
* ``z``, ``p_value``: the difference ``d = mean_inside − mean_outside`` (prediction scale) against its
  distribution over random rigid placements of the class's polygons on the tissue
  (:mod:`napari_mclstexp.analysis.placements`: same shape and size, random rotation, mirror and position):
  ``z = (d − mean(d_null)) / sd(d_null)``, two-sided normal ``p = 2 Φ(−|z|)``.  The null keeps the spatial
  autocorrelation of the slide — a smooth pattern moves with the region — which a spot-wise test (Mann–
  Whitney, label shuffling) does not; the normal approximation gives p below 1/(placements + 1), which the
  multiple-testing correction over hundreds of genes needs;
* ``p_adjusted``: Benjamini–Hochberg over the genes of the class;
* ``reliability_r`` / ``reliable``: the gene's held-out correlation stored with the prediction
  (``uns['mclstexp']['reliability']``), NaN when absent;
* ``novelty_inside`` / ``novelty_outside``: mean ``obs['novelty']`` when the prediction carries it.

Genes are ranked as :mod:`napari_mclstexp.analysis.region_rank` says (by ``log2_fold_change`` by default).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats

from ..data.scales import PER_SPOT
from ..errors import InputError
from ..io.annotations import AnnotationClass, Annotations
from ..io.export import reliability_table
from ..prediction_meta import is_prediction
from ..prediction_meta import normalization as recorded_normalization
from ..progress import CancelToken, Progress, ProgressGen, run
from .placements import random_placements
from .region_rank import RANK_BY, rank_genes, top_gene_agreement, top_genes

__all__ = [
    "COLUMNS",
    "RANK_BY",
    "back_transform",
    "iter_region_statistics",
    "region_statistics",
    "top_gene_agreement",
    "top_genes",
]

#: Columns of :func:`region_statistics`, in order.
COLUMNS = (
    "class",
    "gene",
    "n_inside",
    "n_outside",
    "mean_inside",
    "mean_outside",
    "difference",
    "expr_inside",
    "expr_outside",
    "log2_fold_change",
    "z",
    "p_value",
    "p_adjusted",
    "reliability_r",
    "reliable",
    "novelty_inside",
    "novelty_outside",
    "n_placements",
)
#: Multiply-adds per block of :func:`placement_sums` (≈ 10–30 ms of held GIL on a busy 2-core machine).
OPS_PER_BLOCK = 2e7
#: Fewest spots inside (and outside) a class for statistics.
MIN_SPOTS = 3


def back_transform(values: np.ndarray, normalization: str | None) -> np.ndarray:
    """Undo the log of a normalisation: expression per 10⁴ (``log10_*``) or 10⁶ (``ln_cpm``) counts.

    ``None`` is taken as the project's default scale (``log10_1e4``); ``"none"`` returns the values.
    """
    method = normalization or PER_SPOT
    v = np.asarray(values)
    v = v if v.dtype in (np.float32, np.float64) else v.astype(np.float64)
    if method.startswith("log10_1e4"):
        return np.expm1(v * v.dtype.type(np.log(10.0)))  # 10^v − 1, in the values' precision
    if method == "ln_cpm":
        return np.expm1(v)
    if method == "none":
        return v
    raise InputError(f"unknown normalisation {method!r}: cannot back-transform the predictions")


def _dense(adata, genes: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
    names = list(adata.var_names) if genes is None else list(genes)
    missing = [g for g in names if g not in adata.var_names]
    if missing:
        raise InputError(f"genes not in the predictions: {', '.join(missing[:5])}")
    sub = adata[:, names].X if genes is not None else adata.X
    values = sub.toarray() if sparse.issparse(sub) else np.asarray(sub)
    return names, np.asarray(values, dtype=np.float32)


def _gene_info(adata, genes: list[str]) -> pd.DataFrame:
    table = reliability_table(adata)
    frame = pd.DataFrame({"gene": genes})
    if table is None:
        return frame.assign(reliability_r=np.nan, reliable=pd.NA)
    table = table.rename(columns={"r": "reliability_r"}).drop_duplicates("gene")
    return frame.merge(table, on="gene", how="left")


def placement_sums(null: sparse.csr_matrix, values: np.ndarray, ops_per_block: float = OPS_PER_BLOCK) -> np.ndarray:
    """``null @ values`` (``(P, G)`` float64 sums of each placement's spots), a block of genes at a time.

    scipy's sparse product holds the GIL for the whole call (seconds at 50k tiles × 785 genes), which
    freezes the viewer while a worker computes; blocks of about ``ops_per_block`` multiply-adds each
    leave it every few tens of ms.
    """
    step = max(1, int(ops_per_block // max(null.nnz, 1)))
    out = np.empty((null.shape[0], values.shape[1]), dtype=np.float64)
    for j in range(0, values.shape[1], step):
        out[:, j : j + step] = null @ np.ascontiguousarray(values[:, j : j + step])
    return out


def _class_table(
    name: str, inside: np.ndarray, values: np.ndarray, back: np.ndarray, null: sparse.csr_matrix, pseudocount: float
) -> dict[str, Any]:
    n = len(inside)
    n_in = int(inside.sum())
    # means as products with the 0/1 membership (BLAS, GIL released), not copies of values[inside]
    members = np.stack([inside, ~inside]).astype(values.dtype)
    m_in, m_out = (members @ values) / np.array([[n_in], [n - n_in]], dtype=np.float64)
    e_in, e_out = (members @ back) / np.array([[n_in], [n - n_in]], dtype=np.float64)
    d = m_in - m_out
    z = np.full(values.shape[1], np.nan)
    if null.shape[0] >= 2:
        k = np.asarray(null.sum(axis=1), dtype=np.float64)  # (P, 1) spots per placement
        sums = placement_sums(null, values)
        total = values.sum(axis=0, dtype=np.float64)
        d_null = sums / k - (total - sums) / (n - k)
        sd = d_null.std(axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(sd > 0, (d - d_null.mean(axis=0)) / sd, np.nan)
    p = 2.0 * stats.norm.sf(np.abs(z))
    finite = np.isfinite(p)
    p_adj = np.full_like(p, np.nan)
    if finite.any():
        p_adj[finite] = stats.false_discovery_control(p[finite], method="bh")
    return {
        "class": name,
        "n_inside": n_in,
        "n_outside": n - n_in,
        "mean_inside": m_in,
        "mean_outside": m_out,
        "difference": d,
        "expr_inside": e_in,
        "expr_outside": e_out,
        "log2_fold_change": np.log2((e_in + pseudocount) / (e_out + pseudocount)),
        "z": z,
        "p_value": p,
        "p_adjusted": p_adj,
        "n_placements": int(null.shape[0]),
    }


def iter_region_statistics(
    adata,
    annotations: Annotations | Sequence[AnnotationClass],
    *,
    genes: Sequence[str] | None = None,
    n_placements: int = 200,
    seed: int = 0,
    pseudocount: float = 0.01,
    normalization: str | None = None,
    rank_by: str = RANK_BY[0],
    cancel: CancelToken | None = None,
) -> ProgressGen[pd.DataFrame]:
    """Per-class, per-gene statistics of a prediction (see the module docstring for every column).

    Parameters
    ----------
    adata
        Prediction (or sample with normalised ``X``); ``obsm['spatial']`` full-res px ``(x, y)``, the
        frame of the annotations.
    annotations
        Classes of polygons (:func:`napari_mclstexp.io.annotations.read_annotations`).
    genes
        Genes to test (default all).
    n_placements
        Random rigid placements per class for the null.
    seed
        Seed of the placements.
    pseudocount
        ``ε`` of the log2 fold change, in back-transformed units.
    normalization
        The values' scale (default: recorded in ``uns``, else ``log10_1e4`` for a prediction and
        ``none`` for anything else, e.g. a sample's counts).
    rank_by
        One of :data:`RANK_BY`: each class's genes by decreasing value of this column.

    Yields
    ------
    Progress
        One event per class (stage ``"regions"``).

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`; per class, genes by decreasing ``rank_by`` (NaN last).  Classes covering
        fewer than :data:`MIN_SPOTS` spots (or leaving fewer outside) get a ``UserWarning`` and no rows.
    """
    classes = annotations.classes if isinstance(annotations, Annotations) else list(annotations)
    if rank_by not in RANK_BY:
        raise InputError(f"cannot rank genes by {rank_by!r}: one of {', '.join(RANK_BY)}")
    if "spatial" not in adata.obsm:
        raise InputError("the predictions have no obsm['spatial'] spot positions")
    xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)
    names, values = _dense(adata, genes)
    scale = normalization or recorded_normalization(adata) or (PER_SPOT if is_prediction(adata) else "none")
    back = back_transform(values, scale).astype(np.float32, copy=False)
    info = _gene_info(adata, names)
    novelty = adata.obs["novelty"].to_numpy(dtype=np.float64) if "novelty" in adata.obs else None
    rng = np.random.default_rng(seed)
    frames = []
    for i, cls in enumerate(classes):
        if cancel is not None:
            cancel.raise_if_cancelled()
        yield Progress("regions", i, len(classes), f"class {cls.name}")
        inside = cls.contains(xy)
        n_in = int(inside.sum())
        if n_in < MIN_SPOTS or len(xy) - n_in < MIN_SPOTS:
            warnings.warn(
                f"annotation class {cls.name!r} covers {n_in} of {len(xy)} spots: no statistics",
                UserWarning,
                stacklevel=2,
            )
            continue
        null = random_placements(xy, cls.regions, n_placements, rng, n_observed=n_in, cancel=cancel)
        if null.shape[0] < min(n_placements, 20):
            warnings.warn(
                f"annotation class {cls.name!r}: only {null.shape[0]} placements fit on the tissue; "
                "its p-values are unreliable",
                UserWarning,
                stacklevel=2,
            )
        cols = _class_table(cls.name, inside, values, back, null, pseudocount)
        frame = pd.DataFrame({"gene": names, **cols}).merge(info, on="gene", how="left")
        frame["novelty_inside"] = np.nanmean(novelty[inside]) if novelty is not None else np.nan
        frame["novelty_outside"] = np.nanmean(novelty[~inside]) if novelty is not None else np.nan
        frames.append(rank_genes(frame, rank_by)[list(COLUMNS)])
    yield Progress("regions", len(classes), len(classes), "done")
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(frames, ignore_index=True)


def region_statistics(adata, annotations, **kwargs: Any) -> pd.DataFrame:
    """:func:`iter_region_statistics` run to the end (no progress shown)."""
    return run(iter_region_statistics(adata, annotations, **kwargs))
